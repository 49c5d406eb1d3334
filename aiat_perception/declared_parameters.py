"""Which parameters a node declares, with their default values, read from its source with ``ast``.

Used to check graph files and parameter files without starting the node: a misspelt parameter
name or a value of the wrong type (``rate_hz: 20`` for a double) is otherwise found only at run
time, or, for names, never (ROS ignores overrides of undeclared parameters).
"""
from __future__ import annotations

import ast
import itertools
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Tuple


@dataclass
class DeclaredParameters:
    """Names a node declares and the defaults that could be read. ``unresolved`` lists
    declarations whose name the reader cannot compute (then ``names`` may be incomplete)."""
    names: set = field(default_factory=set)
    defaults: Dict[str, object] = field(default_factory=dict)
    unresolved: List[str] = field(default_factory=list)

    def add(self, name: str, default=None) -> None:
        self.names.add(name)
        if default is not None:
            self.defaults[name] = default


def declared_parameters(source: str, filename: str = '<node>') -> DeclaredParameters:
    """Read ``declare_parameter('name', default)`` calls: direct ones, calls through a helper that
    passes its first argument on as the name (``declare = lambda n, d: self.declare_parameter(n, d)``),
    ``declare_parameters(namespace, [(name, default), ...])``, and names and defaults taken from loops
    over literals or module-level literal tables (``for name, (default, doc) in PARAMETERS.items()``,
    f-strings of loop variables)."""
    tree = ast.parse(source, filename)
    parents = {}
    for node in ast.walk(tree):
        for child in ast.iter_child_nodes(node):
            parents[child] = node
    helpers = _declaring_helpers(tree)
    constants = _module_constants(tree)
    found = DeclaredParameters()
    if 'allow_undeclared_parameters' in source or 'automatically_declare_parameters_from_overrides' in source:
        found.unresolved.append('node accepts undeclared parameters')
    for call in ast.walk(tree):
        if not isinstance(call, ast.Call):
            continue
        called = _called_name(call)
        if called == 'declare_parameters':
            _read_declare_parameters(call, parents, constants, found)
        elif called == 'declare_parameter' or called in helpers:
            name_arg = _first_argument(call, 'name')
            if name_arg is None:
                continue
            owner = _enclosing_function(call, parents)
            if owner is not None and _is_own_parameter(name_arg, owner):
                continue  # the helper's own body: its callers are read instead
            names = _static_names(name_arg, call, parents, constants)
            if names is None:
                found.unresolved.append(f'line {call.lineno}: {ast.unparse(call)}')
                continue
            default = call.args[1] if len(call.args) > 1 else next(
                (kw.value for kw in call.keywords if kw.arg in ('value', 'default')), None)
            for name, env in names:
                found.add(name, None if default is None else _evaluate(default, env, constants))
    return found


# ----------------------------------------------------------------------------- parameter types

def parameter_type(value) -> Optional[str]:
    """The ROS 2 parameter type a Python value has (None for an empty or mixed list)."""
    if isinstance(value, bool):
        return 'bool'
    if isinstance(value, int):
        return 'integer'
    if isinstance(value, float):
        return 'double'
    if isinstance(value, str):
        return 'string'
    if isinstance(value, (list, tuple)) and value:
        kinds = {parameter_type(v) for v in value}
        if kinds == {'integer', 'double'}:
            kinds = {'double'}
        return f'{kinds.pop()} array' if len(kinds) == 1 and None not in kinds else None
    return None


def coerce(value, default):
    """An integer (or integer list) given for a double (list) parameter, as rclpy would need it."""
    want = parameter_type(default)
    if want == 'double' and parameter_type(value) == 'integer':
        return float(value)
    if want == 'double array' and parameter_type(value) in ('integer array', 'double array'):
        return [float(v) for v in value]
    return value


def type_problem(value, default) -> Optional[str]:
    """Why rclpy would refuse ``value`` for a parameter declared with ``default``, or None."""
    want, got = parameter_type(default), parameter_type(value)
    if want is None or got is None or want == got:
        return None
    article = 'an' if want[0] in 'aeiou' else 'a'
    return f'is {value!r} ({got}) but the node declares {article} {want} (default {default!r})'


# ----------------------------------------------------------------------------- reading the source

def _called_name(call: ast.Call) -> Optional[str]:
    if isinstance(call.func, ast.Attribute):
        return call.func.attr
    if isinstance(call.func, ast.Name):
        return call.func.id
    return None


def _first_argument(call: ast.Call, keyword: str):
    if call.args:
        return call.args[0]
    for kw in call.keywords:
        if kw.arg == keyword:
            return kw.value
    return None


def _function_params(func) -> List[str]:
    args = [a.arg for a in func.args.posonlyargs + func.args.args]
    return args[1:] if args and args[0] == 'self' else args


def _declaring_helpers(tree) -> set:
    """Names bound to functions/lambdas that pass their first parameter on as a parameter name."""
    helpers = set()
    changed = True
    while changed:
        changed = False
        for node in ast.walk(tree):
            func, names = None, []
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                func, names = node, [node.name]
            elif isinstance(node, ast.Assign) and isinstance(node.value, ast.Lambda):
                func = node.value
                names = [t.id if isinstance(t, ast.Name) else t.attr for t in node.targets
                         if isinstance(t, (ast.Name, ast.Attribute))]
            if func is None or not names or set(names) <= helpers:
                continue
            params = _function_params(func)
            if not params:
                continue
            for call in ast.walk(func):
                if (isinstance(call, ast.Call) and _called_name(call) in ({'declare_parameter'} | helpers)
                        and isinstance(_first_argument(call, 'name'), ast.Name)
                        and _first_argument(call, 'name').id == params[0]):
                    helpers.update(names)
                    changed = True
                    break
    return helpers


def _enclosing_function(node, parents):
    while node in parents:
        node = parents[node]
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
            return node
    return None


def _is_own_parameter(expr, func) -> bool:
    return isinstance(expr, ast.Name) and expr.id in _function_params(func)


def _module_constants(tree) -> dict:
    """Module-level ``NAME = <literal>`` assignments (tables of parameters and their defaults)."""
    constants = {}
    for stmt in tree.body:
        if isinstance(stmt, ast.Assign) and len(stmt.targets) == 1 and isinstance(stmt.targets[0], ast.Name):
            try:
                constants[stmt.targets[0].id] = ast.literal_eval(stmt.value)
            except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
                pass
    return constants


def _literal(expr, constants: dict):
    """A literal, a module constant, or ``.items()/.keys()/.values()`` of one; ValueError otherwise."""
    if isinstance(expr, ast.Name) and expr.id in constants:
        return constants[expr.id]
    if (isinstance(expr, ast.Call) and isinstance(expr.func, ast.Attribute) and not expr.args
            and expr.func.attr in ('items', 'keys', 'values')):
        mapping = _literal(expr.func.value, constants)
        if isinstance(mapping, dict):
            return list(getattr(mapping, expr.func.attr)())
        raise ValueError('not a literal mapping')
    return ast.literal_eval(expr)


def _loop_bindings(node, parents, constants: dict) -> Optional[List[dict]]:
    """Every combination of loop variables around ``node`` whose loops run over literals."""
    loops = []
    child = node
    while child in parents:
        parent = parents[child]
        if isinstance(parent, (ast.ListComp, ast.SetComp, ast.DictComp, ast.GeneratorExp)):
            loops.extend((g.target, g.iter) for g in parent.generators if child is not g.iter)
        elif isinstance(parent, (ast.For, ast.AsyncFor)) and child is not parent.iter and child is not parent.target:
            loops.append((parent.target, parent.iter))
        child = parent
    choices = []
    for target, iterable in loops:
        try:
            items = list(_literal(iterable, constants))
        except (ValueError, TypeError, SyntaxError):
            return None
        options = []
        for item in items:
            binding = {}
            if not _bind(target, item, binding):
                return None
            options.append(binding)
        choices.append(options)
    return [dict(kv for part in combo for kv in part.items()) for combo in itertools.product(*choices)]


def _bind(target, value, binding: dict) -> bool:
    if isinstance(target, ast.Name):
        binding[target.id] = value
        return True
    if isinstance(target, (ast.Tuple, ast.List)) and isinstance(value, (tuple, list)) \
            and len(target.elts) == len(value):
        return all(_bind(t, v, binding) for t, v in zip(target.elts, value))
    return False


def _static_names(expr, call, parents, constants: dict) -> Optional[List[Tuple[str, dict]]]:
    """The names ``expr`` takes, each with the loop variables that give it."""
    if isinstance(expr, ast.Constant):
        return [(expr.value, {})] if isinstance(expr.value, str) else None
    bindings = _loop_bindings(call, parents, constants)
    if not bindings:
        return None
    out = []
    for env in bindings:
        value = _evaluate(expr, env)
        if not isinstance(value, str):
            return None
        out.append((value, env))
    return out


def _evaluate(expr, env: dict, constants: Optional[dict] = None):
    """A value computed from literals, loop variables and module constants; None if unknown."""
    if isinstance(expr, ast.Constant):
        return expr.value
    if isinstance(expr, ast.Name):
        return env.get(expr.id, (constants or {}).get(expr.id))
    if isinstance(expr, (ast.List, ast.Tuple, ast.UnaryOp)):
        try:
            return ast.literal_eval(expr)
        except (ValueError, TypeError, SyntaxError):
            return None
    if isinstance(expr, ast.JoinedStr):
        parts = []
        for value in expr.values:
            if isinstance(value, ast.FormattedValue):
                if value.format_spec is not None or value.conversion not in (-1, None):
                    return None
                inner = _evaluate(value.value, env)
                if inner is None:
                    return None
                parts.append(str(inner))
            else:
                parts.append(value.value)
        return ''.join(parts)
    if isinstance(expr, ast.BinOp) and isinstance(expr.op, ast.Add):
        left, right = _evaluate(expr.left, env), _evaluate(expr.right, env)
        return left + right if isinstance(left, str) and isinstance(right, str) else None
    return None


def _read_declare_parameters(call, parents, constants: dict, found: DeclaredParameters) -> None:
    namespace = _first_argument(call, 'namespace')
    params = call.args[1] if len(call.args) > 1 else next(
        (kw.value for kw in call.keywords if kw.arg == 'parameters'), None)
    prefix = ''
    if namespace is not None:
        prefix = _evaluate(namespace, {})
        if not isinstance(prefix, str):
            found.unresolved.append(f'line {call.lineno}: {ast.unparse(call)}')
            return
    if not isinstance(params, (ast.List, ast.Tuple)):
        found.unresolved.append(f'line {call.lineno}: {ast.unparse(call)}')
        return
    for item in params.elts:
        is_pair = isinstance(item, ast.Tuple) and item.elts
        name = item.elts[0] if is_pair else item
        names = _static_names(name, call, parents, constants)
        if names is None:
            found.unresolved.append(f'line {call.lineno}: {ast.unparse(item)}')
            continue
        default = item.elts[1] if is_pair and len(item.elts) > 1 else None
        for text, env in names:
            found.add(f'{prefix}.{text}' if prefix else text,
                      None if default is None else _evaluate(default, env, constants))
