"""Pipeline diagnostics: levels at the threshold boundaries and the DiagnosticArray layout."""
import dataclasses

import pytest

from unipixel_ros.ros.diagnostics import (ERROR, OK, WARN, DiagnosticThresholds,
                                          PipelineStats, build_diagnostic_array, evaluate)

# 0.25 tolerance around 20 Hz: acceptable band exactly [15, 25] Hz (no float rounding at the edges)
T = DiagnosticThresholds(expected_rate_hz=20.0, rate_tolerance=0.25, latency_warn_ms=200.0,
                         latency_error_ms=800.0, drop_warn_fraction=0.5, error_hold_s=5.0)


def healthy(**changes) -> PipelineStats:
    base = PipelineStats(frames_in_window=40, window_s=2.0, frames_total=400, processed_total=300,
                         dropped_in_window=10, dropped_total=100, latency_ms=50.0,
                         engine='onnxruntime', backend='CPUExecutionProvider')
    return dataclasses.replace(base, **changes)


def test_healthy_pipeline_is_ok():
    ev = evaluate(healthy(), T)
    assert ev.level == OK and ev.message == 'ok: 20.0 Hz input'
    values = dict(ev.values)
    assert values['Actual frequency (Hz)'] == '20.000000'
    assert values['Minimum acceptable frequency (Hz)'] == '15.000000'
    assert values['Maximum acceptable frequency (Hz)'] == '25.000000'
    assert values['Engine'] == 'onnxruntime' and values['Backend'] == 'CPUExecutionProvider'
    assert values['Dropped fraction in window'] == '0.250000'


@pytest.mark.parametrize('frames,level,text', [
    (30, OK, 'ok'),            # 15.0 Hz: on the lower bound, still ok (strict <, as FrequencyStatus)
    (29, WARN, 'too low'),     # 14.5 Hz
    (50, OK, 'ok'),            # 25.0 Hz: on the upper bound
    (51, WARN, 'too high'),    # 25.5 Hz
    (0, ERROR, 'no input frames'),
])
def test_input_rate_boundaries(frames, level, text):
    ev = evaluate(healthy(frames_in_window=frames, dropped_in_window=0), T)
    assert ev.level == level and text in ev.message


def test_no_expected_rate_only_requires_frames():
    t = dataclasses.replace(T, expected_rate_hz=0.0)
    assert evaluate(healthy(frames_in_window=1, dropped_in_window=0), t).level == OK
    assert evaluate(healthy(frames_in_window=0, dropped_in_window=0), t).level == ERROR
    assert 'Target frequency (Hz)' not in dict(evaluate(healthy(), t).values)


@pytest.mark.parametrize('latency,level', [
    (None, OK), (200.0, OK), (200.001, WARN), (800.0, WARN), (800.001, ERROR)])
def test_latency_boundaries(latency, level):
    ev = evaluate(healthy(latency_ms=latency), T)
    assert ev.level == level
    assert dict(ev.values)['Latency (ms)'] == ('n/a' if latency is None else '%f' % latency)


@pytest.mark.parametrize('dropped,level', [(20, OK), (21, WARN)])  # 20/40 = 0.5 is the bound
def test_dropped_fraction_boundary(dropped, level):
    ev = evaluate(healthy(dropped_in_window=dropped), T)
    assert ev.level == level
    if level == WARN:
        assert '52% of input frames dropped' in ev.message


@pytest.mark.parametrize('age,level', [(None, ERROR), (0.0, ERROR), (5.0, ERROR), (5.01, OK)])
def test_last_error_holds_for_error_hold_s(age, level):
    ev = evaluate(healthy(last_error='engine failed: out of memory', last_error_age_s=age), T)
    assert ev.level == level
    assert dict(ev.values)['Last error'] == 'engine failed: out of memory'


def test_missing_engine_warns_and_problems_merge_like_merge_summary():
    ev = evaluate(healthy(engine='', latency_ms=900.0), T)
    assert ev.level == ERROR
    # every non-OK check's message, in check order, joined with '; '; the OK rate message is gone
    assert ev.message == 'latency 900 ms > 800 ms; no engine loaded'
    assert dict(ev.values)['Engine'] == 'none'


def test_window_and_threshold_validation():
    with pytest.raises(ValueError, match='window_s'):
        evaluate(healthy(window_s=0.0), T)
    with pytest.raises(ValueError, match='latency_warn_ms'):
        DiagnosticThresholds(latency_warn_ms=500.0, latency_error_ms=100.0)
    with pytest.raises(ValueError, match='rate_tolerance'):
        DiagnosticThresholds(rate_tolerance=1.0)
    with pytest.raises(ValueError, match='drop_warn_fraction'):
        DiagnosticThresholds(drop_warn_fraction=1.5)


def test_diagnostic_array_layout():
    pytest.importorskip('diagnostic_msgs')
    from builtin_interfaces.msg import Time
    from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus

    array = build_diagnostic_array(healthy(latency_ms=300.0), T, node_name='unipixel_node',
                                   hardware_id='realsense_d435', stamp=Time(sec=12, nanosec=5))
    assert isinstance(array, DiagnosticArray) and len(array.status) == 1
    assert array.header.stamp.sec == 12 and array.header.stamp.nanosec == 5
    status = array.status[0]
    assert status.name == 'unipixel_node: pipeline' and status.hardware_id == 'realsense_d435'
    assert status.level == DiagnosticStatus.WARN and 'latency 300 ms' in status.message
    keys = [kv.key for kv in status.values]
    assert keys[:4] == ['Events in window', 'Events since startup', 'Duration of window (s)',
                        'Actual frequency (Hz)']
    assert {'Latency (ms)', 'Engine', 'Backend', 'Dropped since startup', 'Last error'} <= set(keys)
    assert all(isinstance(kv.value, str) for kv in status.values)
