"""aiat-train ablate-augment: the cells are valid fit configs that switch exactly the named
transforms on, and the statistics (mean, sd, Welch's t-test against no augmentation) are right."""
import math
from pathlib import Path

import pytest

from aiat_training import ablation
from aiat_training.data.augment import build_augmentation
from aiat_training.train.config import fit_config_from_dict


class Args:
    height, width, epochs, batch, lr, iters_per_epoch = 192, 256, 3, 8, 1e-3, 0


def _transforms(cfg):
    names = [type(t).__name__ for t in build_augmentation(cfg.augmentation, seed=0, size=(192, 256)).transforms]
    return [n for n in names if n not in ('NoOp', 'Resize')]


def test_cells_are_fit_configs_with_the_named_transform_only(tmp_path):
    seen = {}
    for cell in ablation.CELLS:
        data = ablation.fit_config(cell, 1, tmp_path / 'data', tmp_path / 'run', Args)
        cfg = fit_config_from_dict(data, f'{cell}.yaml')
        assert cfg.train.seed == 1 and cfg.train.eval_every == 3 and cfg.input.width == 256
        assert str(cfg.split.lists_dir).endswith('lists')
        seen[cell] = _transforms(cfg)
    assert seen['none'] == [] and not ablation.augmentation_for('none')['enabled']
    expected = {'flip': ['HorizontalFlip'], 'rotation': ['Affine'], 'scale': ['Affine'],
                'crop': ['RandomCropFromBorders'], 'translation': ['Affine'], 'noise': ['GaussNoise'],
                'colour': ['ColorJitter']}
    for cell, names in expected.items():
        assert seen[cell] == names, (cell, seen[cell])
    assert len(seen['all']) == 7 and 'CoarseDropout' not in seen['all']     # cut-out is not a cell
    assert len(ablation.CELLS) == 9
    with pytest.raises(ValueError, match='unknown cell'):
        ablation.augmentation_for('mixup')


def test_summary_welch_and_report(tmp_path):
    results = [{'cell': 'none', 'val_mAP': v} for v in (0.40, 0.41, 0.42)]
    results += [{'cell': 'flip', 'val_mAP': v} for v in (0.50, 0.51, 0.52)]      # clearly better
    results += [{'cell': 'noise', 'val_mAP': v} for v in (0.39, 0.42, 0.43)]     # within noise
    summary = ablation.summarise(results)
    cells = summary['cells']
    assert cells['none']['mean'] == pytest.approx(0.41) and cells['none']['sd'] == pytest.approx(0.01)
    assert 'welch_p' not in cells['none']
    assert cells['flip']['significant'] and cells['flip']['diff_vs_none'] == pytest.approx(0.10)
    assert cells['flip']['welch_p'] < 0.001
    assert not cells['noise']['significant'] and cells['noise']['welch_p'] > 0.3
    table = ablation.markdown(summary, {'seeds': 3})
    assert '| flip | 0.5100 ± 0.0100 | 3 | +0.1000 |' in table and 'yes' in table
    ablation.plot(summary, tmp_path / 'ablation.png')
    assert (tmp_path / 'ablation.png').stat().st_size > 1000
    one = ablation.summarise([{'cell': 'none', 'val_mAP': 0.4}])
    assert math.isnan(one['cells']['none']['sd'])


def test_layout_b_is_a_different_layout_of_the_same_actors():
    from aiat_perception.sim.scenario import load_scenario, resolve_scenario
    a = load_scenario(resolve_scenario(ablation.TRAIN_SCENARIO))
    b = load_scenario(resolve_scenario(ablation.VAL_SCENARIO))
    assert sorted(x.asset for x in a.actors) == sorted(x.asset for x in b.actors)
    assert [x.motion for x in a.actors] != [x.motion for x in b.actors]
    assert Path(b.source).name == 'mesh_actors_layout_b.yaml'
