"""The preview CLI renders an annotated frame."""
from __future__ import annotations

import json

import cv2
import yaml

from aiat_perception.sim import preview


def test_preview_writes_annotated_frame(tmp_path, capsys):
    scenario = tmp_path / 'scene.yaml'
    scenario.write_text(yaml.safe_dump({
        'ego': {'camera': {'width': 240, 'height': 180}},
        'actors': [{'type': 'photo', 'photo': 'person_vtest_walk', 'motion': {'type': 'static', 'position': [6, 0]}},
                   {'type': 'mesh', 'asset': 'cube', 'motion': {'type': 'static', 'position': [8, 2]}}]}))
    out = tmp_path / 'frame.png'
    assert preview.main(['--scenario', str(scenario), '--out', str(out), '--time', '0.5']) == 0
    assert json.loads(capsys.readouterr().out.strip().splitlines()[-1])['out'] == str(out)
    image = cv2.imread(str(out))
    assert image.shape == (180, 240, 3)
    assert ((image == 255).all(axis=2)).sum() > 50  # white ground-truth boxes were drawn
    assert preview.main(['--scenario', str(tmp_path / 'missing.yaml'), '--out', str(out)]) == 2
