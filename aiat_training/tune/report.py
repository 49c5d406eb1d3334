"""The study report: PNG plots from Optuna's visualisation (matplotlib backend: optimisation
history, parameter importances, slices, per-epoch validation curves), ``summary.md`` and
``study.html`` (the summary with the plots embedded, readable offline; no plotly needed)."""
from __future__ import annotations

import base64
import html
import json
import warnings
from pathlib import Path


def _save(ax_or_axes, path: Path) -> bool:
    import matplotlib.pyplot as plt
    import numpy as np
    first = np.ravel(ax_or_axes)[0] if isinstance(ax_or_axes, np.ndarray) else ax_or_axes
    fig = first.figure
    fig.set_size_inches(max(fig.get_size_inches()[0], 7), max(fig.get_size_inches()[1], 4))
    fig.savefig(path, dpi=100, bbox_inches='tight')
    plt.close(fig)
    return True


def plots(study, out_dir: Path) -> dict[str, str]:
    """{title: file name} of the plots that could be drawn (importances need >= 2 finished trials
    with differing parameters; a plot Optuna cannot draw is left out, with the reason)."""
    import matplotlib
    matplotlib.use('Agg')
    import optuna.visualization.matplotlib as ovm
    from optuna.exceptions import ExperimentalWarning

    out_dir.mkdir(parents=True, exist_ok=True)
    made, skipped = {}, {}
    for title, name, fn in (('Optimisation history', 'history.png', ovm.plot_optimization_history),
                            ('Parameter importances', 'importances.png', ovm.plot_param_importances),
                            ('Slices', 'slices.png', ovm.plot_slice),
                            ('Validation mAP per epoch', 'intermediate.png', ovm.plot_intermediate_values)):
        try:
            with warnings.catch_warnings():
                warnings.simplefilter('ignore', ExperimentalWarning)
                _save(fn(study), out_dir / name)
            made[title] = name
        except Exception as exc:   # e.g. too few completed trials for importances
            skipped[title] = f'{type(exc).__name__}: {exc}'
    plots.skipped = skipped
    return made


def _fmt(value) -> str:
    if isinstance(value, float):
        return f'{value:.4g}'
    return str(value)


def summary_markdown(study, best_config_path: Path | None, made: dict, skipped: dict) -> str:
    import optuna
    trials = study.get_trials(deepcopy=False)
    states = {}
    for t in trials:
        states[t.state.name] = states.get(t.state.name, 0) + 1
    lines = [f'# Study `{study.study_name}`', '',
             f'Trials: {len(trials)} ({", ".join(f"{k.lower()} {v}" for k, v in sorted(states.items()))}). '
             'Objective: best validation mAP@[.5:.95] of the run (maximised).', '']
    complete = [t for t in trials if t.state == optuna.trial.TrialState.COMPLETE]
    if complete:
        best = study.best_trial
        lines += [f'Best: trial {best.number}, mAP {best.value:.4f}, seed {best.user_attrs.get("seed")}.', '']
        if best_config_path is not None:
            lines += [f'Best config (ready for `aiat-train fit`): `{best_config_path}`', '']
        lines += ['| parameter | best value |', '|---|---|']
        lines += [f'| `{k}` | {_fmt(v)} |' for k, v in best.params.items()]
        lines.append('')
    keys = sorted({k for t in trials for k in t.params})
    lines += ['## Trials', '', '| # | state | mAP | epochs run | fit s | seed | ' + ' | '.join(f'`{k}`' for k in keys) + ' |',
              '|' + '---|' * (6 + len(keys))]
    for t in trials:
        epochs = max(t.intermediate_values) if t.intermediate_values else ''
        value = f'{t.value:.4f}' if t.value is not None else (
            f'({max(t.intermediate_values.values()):.4f})' if t.intermediate_values else '')
        lines.append(f'| {t.number} | {t.state.name.lower()} | {value} | {epochs} | '
                     f'{_fmt(t.user_attrs.get("fit_seconds", ""))} | {t.user_attrs.get("seed", "")} | '
                     + ' | '.join(_fmt(t.params.get(k, '')) for k in keys) + ' |')
    lines += ['', 'Pruned trials show their best intermediate mAP in parentheses. Each trial\'s config and '
              'result: `trials/trial_NNNN/fit.yaml`, `result.json`; TensorBoard: '
              '`tensorboard --logdir trials`.', '']
    if made:
        lines += ['## Plots', ''] + [f'![{title}]({name})' for title, name in made.items()] + ['']
    if skipped:
        lines += ['Not drawn: ' + '; '.join(f'{k} ({v})' for k, v in skipped.items()), '']
    return '\n'.join(lines)


def write_report(study, out_dir: Path, best_config_path: Path | None = None) -> dict:
    """``summary.md``, ``study.html`` and the PNGs in ``out_dir``; returns their paths."""
    import markdown as md

    out_dir = Path(out_dir)
    made = plots(study, out_dir)
    skipped = getattr(plots, 'skipped', {})
    text = summary_markdown(study, best_config_path, made, skipped)
    (out_dir / 'summary.md').write_text(text)
    body = md.markdown(text, extensions=['tables'])
    for name in made.values():        # embed, so the page is one self-contained file
        data = base64.b64encode((out_dir / name).read_bytes()).decode()
        body = body.replace(f'src="{name}"', f'src="data:image/png;base64,{data}"')
    page = ('<!DOCTYPE html><html><head><meta charset="utf-8"><title>'
            f'{html.escape(study.study_name)}</title><style>body{{font-family:sans-serif;max-width:1100px;'
            'margin:auto}} table{border-collapse:collapse} td,th{border:1px solid #ccc;padding:2px 6px}'
            'img{max-width:100%}</style></head><body>' + body + '</body></html>')
    (out_dir / 'study.html').write_text(page)
    return {'summary': str(out_dir / 'summary.md'), 'html': str(out_dir / 'study.html'),
            'plots': [str(out_dir / n) for n in made.values()], 'not_drawn': skipped}


def trials_json(study) -> list[dict]:
    return [{'number': t.number, 'state': t.state.name, 'value': t.value, 'params': t.params,
             'intermediate': {int(k): v for k, v in t.intermediate_values.items()},
             **{k: t.user_attrs.get(k) for k in ('seed', 'fit_seconds', 'trial_seconds', 'worker', 'device')}}
            for t in study.get_trials(deepcopy=False)]


def dump(obj, path: Path) -> None:
    path.write_text(json.dumps(obj, indent=2, default=str))
