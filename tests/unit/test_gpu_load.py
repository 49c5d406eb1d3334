"""GPU load for diagnostics: absent keys when nothing can be read; recorded tegrastats lines parsed."""
from __future__ import annotations

import importlib.util
import stat
import sys
import time

import pytest

from aiat_perception.gpu_load import GpuLoad, diagnostic_values, parse_tegrastats

GPU_KEYS = {'gpu_util_percent', 'gpu_memory_used_mb', 'gpu_memory_total_mb', 'gpu_freq_mhz', 'gpu_name'}


def _nvml_works() -> bool:
    try:
        import pynvml
        pynvml.nvmlInit()
        pynvml.nvmlShutdown()
        return True
    except Exception:
        return False


HAS_NVML = _nvml_works()

# tegrastats lines in the formats NVIDIA documents and users publish for JetPack 5/6 Orin, Xavier
# and Nano (one line per interval; fields vary by module and release).
ORIN_JP6 = ('12-01-2026 10:00:01 RAM 2847/7772MB (lfb 512x4MB) SWAP 0/3886MB (cached 0MB) '
            'CPU [12%@1574,5%@1574,8%@1574,4%@1574,3%@1574,3%@1574] EMC_FREQ 0%@2133 '
            'GR3D_FREQ 61%@[624,624] NVENC off NVDEC off VIC_FREQ 0%@115 APE 174 '
            'cpu@47.5C soc2@45.3C tj@48.2C VDD_IN 7120mW/7120mW VDD_CPU_GPU_CV 1800mW/1800mW')
ORIN_IDLE = ('RAM 2847/7772MB (lfb 512x4MB) SWAP 0/3886MB CPU [12%@1574,5%@1574,8%@1574,4%@1574] '
             'GR3D_FREQ 0%@0 NVDEC_FREQ 0%@0 NVENC_FREQ 0%@0 VIC_FREQ 0%@0 EMC_FREQ 0%@204')
XAVIER = ('RAM 3055/15817MB (lfb 2751x4MB) SWAP 0/7908MB (cached 0MB) CPU [2%@1190,1%@1190,off,off] '
          'EMC_FREQ 0% GR3D_FREQ 37% AUX@32C CPU@34.5C thermal@33.6C')
NANO = ('RAM 1733/3964MB (lfb 95x4MB) SWAP 0/1982MB (cached 0MB) IRAM 0/252kB(lfb 252kB) '
        'CPU [8%@1479,4%@1479,3%@1479,2%@1479] EMC_FREQ 3%@1600 GR3D_FREQ 99%@921 APE 25 '
        'PLL@27C CPU@29.5C PMIC@100C GPU@27.5C AO@35.5C thermal@28.5C POM_5V_IN 4039/2871')
PER_GPC = 'RAM 5000/30000MB SWAP 0/0MB GR3D_FREQ [40%@1300,20%@1300]'
NO_GPU_FIELDS = 'CPU [2%@1190,1%@1190] EMC_FREQ 0%'


@pytest.mark.parametrize('line, expected', [
    (ORIN_JP6, {'gpu_util_percent': 61.0, 'gpu_freq_mhz': 624, 'gpu_memory_used_mb': 2847.0,
                'gpu_memory_total_mb': 7772.0}),
    (ORIN_IDLE, {'gpu_util_percent': 0.0, 'gpu_freq_mhz': 0, 'gpu_memory_used_mb': 2847.0}),
    (XAVIER, {'gpu_util_percent': 37.0, 'gpu_memory_total_mb': 15817.0}),
    (NANO, {'gpu_util_percent': 99.0, 'gpu_freq_mhz': 921, 'gpu_memory_used_mb': 1733.0}),
    (PER_GPC, {'gpu_util_percent': 30.0, 'gpu_freq_mhz': 1300}),
])
def test_recorded_tegrastats_lines(line, expected):
    values = parse_tegrastats(line)
    for key, value in expected.items():
        assert values[key] == value, key
    assert values['gpu_source'] == 'tegrastats' and values['gpu_memory_shared'] is True


def test_tegrastats_without_gpu_fields_gives_absent_keys():
    assert parse_tegrastats(NO_GPU_FIELDS) == {}
    assert parse_tegrastats('') == {}
    values = parse_tegrastats('GR3D_FREQ 12%')
    assert values == {'gpu_util_percent': 12.0, 'gpu_source': 'tegrastats'}
    assert 'gpu_freq_mhz' not in values and 'gpu_memory_used_mb' not in values


@pytest.mark.skipif(HAS_NVML, reason='checks the absent case on a machine without an NVIDIA driver')
def test_nothing_readable_gives_no_keys_not_zeros():
    load = GpuLoad(sources=['nvml', 'tegrastats'])
    assert not load.available and load.source is None
    assert load.read() == {}
    assert set(load.problems) == {'nvml', 'tegrastats'}
    if importlib.util.find_spec('pynvml') is None:
        assert 'pynvml' in load.problems['nvml']
    else:   # nvidia-ml-py installed, but no driver library: NVMLError
        assert 'NVML' in load.problems['nvml'] or 'NVMLError' in load.problems['nvml']
    assert 'tegrastats not found' in load.problems['tegrastats']
    assert diagnostic_values(load.read()) == {}
    load.close()


def test_unknown_source_is_an_error():
    with pytest.raises(ValueError, match="unknown GPU load source 'cuda'"):
        GpuLoad(sources=['cuda'])


def test_tegrastats_reader_follows_a_streaming_process(tmp_path):
    """A stand-in executable replays recorded lines the way tegrastats streams them; the reader
    keeps the latest one."""
    fake = tmp_path / 'tegrastats'
    fake.write_text(f'#!{sys.executable}\n'
                    'import sys, time\n'
                    f'for line in [{XAVIER!r}, {ORIN_JP6!r}]:\n'
                    '    print(line, flush=True)\n'
                    '    time.sleep(0.05)\n'
                    'time.sleep(30)\n')
    fake.chmod(fake.stat().st_mode | stat.S_IXUSR)
    with GpuLoad(sources=['tegrastats'], tegrastats_path=str(fake), interval_ms=100) as load:
        assert load.available and load.source == 'tegrastats'
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and load.read().get('gpu_util_percent') != 61.0:
            time.sleep(0.02)
        values = load.read()
        assert values['gpu_util_percent'] == 61.0 and values['gpu_memory_total_mb'] == 7772.0
        proc = load.reader.proc
    assert proc.poll() is not None     # close() stopped it


@pytest.mark.skipif(not HAS_NVML, reason='needs an NVIDIA driver (NVML); none on this machine')
def test_nvml_reads_a_real_gpu():
    with GpuLoad(sources=['nvml']) as load:
        values = load.read()
    assert values['gpu_source'] == 'nvml' and values['gpu_name']
    assert 0 <= values['gpu_util_percent'] <= 100
    assert 0 < values['gpu_memory_used_mb'] <= values['gpu_memory_total_mb']


def test_diagnostic_values_are_strings():
    assert diagnostic_values({'gpu_util_percent': 61.0, 'gpu_memory_shared': True, 'gpu_freq_mhz': 624,
                              'gpu_source': 'tegrastats'}) == {
        'gpu_util_percent': '61.0', 'gpu_memory_shared': 'true', 'gpu_freq_mhz': '624',
        'gpu_source': 'tegrastats'}
