"""The machine context recorded beside every benchmark."""
import json

from unipixel_ros.machine import machine_context, page_fault_us


def test_machine_context_is_json_and_measures_page_faults():
    ctx = machine_context()
    json.dumps(ctx)
    assert ctx['cpu_count'] >= 1 and ctx['cpu']
    # a page fault takes a real, finite time: well above a nanosecond, below a millisecond
    assert 0.01 < ctx['page_fault_us'] < 1000
    assert 0.01 < page_fault_us(megabytes=4, repeats=1) < 1000
