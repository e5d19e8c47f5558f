"""Scene-bootstrap intervals of the referring metrics (``training.metrics``)."""
import numpy as np

from unipixel_ros.training.metrics import ReferringMetrics, bootstrap_intervals

GT = np.zeros((4, 4), bool)
GT[:2, :2] = True


def _add(m: ReferringMetrics, scene: str, kind: str, right: bool, exists: bool = True) -> None:
    pred = GT if right else ~GT
    m.update(kind, pred, found=right if not exists else True, gt_mask=GT if exists else
             np.zeros_like(GT), exists=exists, scene=scene)


def test_scenes_not_queries_are_resampled():
    """Two scenes of two queries each, one all right, one all wrong: every resample draws
    whole scenes, so Prec@0.5 can only be 0, 50 or 100, and the interval spans both ends."""
    m = ReferringMetrics()
    for right, scene in ((True, 'a'), (False, 'b')):
        _add(m, scene, 'attribute', right)
        _add(m, scene, 'position', right)
    iv = bootstrap_intervals(m.records, resamples=500, seed=1)
    assert iv['all']['prec_50'] == [0.0, 100.0]
    assert iv['all']['target_acc'] == [100.0, 100.0]      # every answer was "found"
    assert 'no_target_acc' not in iv['all']               # no absent query at all


def test_intervals_contain_the_measured_value_and_shrink_with_more_scenes():
    rng = np.random.default_rng(0)

    def metrics(n_scenes: int) -> ReferringMetrics:
        m = ReferringMetrics()
        for s in range(n_scenes):
            _add(m, f's{s}', 'relation', bool(rng.random() < 0.8))
            _add(m, f's{s}', 'absent', bool(rng.random() < 0.9), exists=False)
        return m

    small, large = metrics(20), metrics(400)
    for m in (small, large):
        summary = m.summary()
        iv = bootstrap_intervals(m.records, resamples=1000)
        for metric in ('prec_50', 'ciou', 'no_target_acc'):
            low, high = iv['all'][metric]
            assert low <= summary[metric] <= high, (metric, low, summary[metric], high)
        assert set(iv) == {'all', 'relation', 'absent'}
        assert set(iv['absent']) == {'no_target_acc'}
    width = [bootstrap_intervals(m.records)['all']['prec_50'] for m in (small, large)]
    assert width[1][1] - width[1][0] < (width[0][1] - width[0][0]) / 2


def test_same_seed_same_interval():
    m = ReferringMetrics()
    for s in range(10):
        _add(m, f's{s}', 'command', s % 3 != 0)
    assert bootstrap_intervals(m.records, seed=3) == bootstrap_intervals(m.records, seed=3)
    assert bootstrap_intervals([]) == {}
