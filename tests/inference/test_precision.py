import logging

import numpy as np
import pytest
import torch

from xrf_sr_kedro.inference import enhance_maps
from xrf_sr_kedro.inference import precision as prec
from xrf_sr_kedro.models.dual_branch import build_model


@pytest.fixture(autouse=True)
def _no_isa_limit(monkeypatch):
    """The tests below choose the CPU's abilities themselves: no limit from the shell."""
    for name in ("ATEN_CPU_CAPABILITY", "ONEDNN_MAX_CPU_ISA", "DNNL_MAX_CPU_ISA"):
        monkeypatch.delenv(name, raising=False)


def _cpuinfo(tmp_path, flags):
    p = tmp_path / f"cpuinfo_{abs(hash(flags))}"
    p.write_text(f"processor\t: 0\nmodel name\t: test\nflags\t\t: {flags}\n\n"
                 f"processor\t: 1\nflags\t\t: {flags}\n")
    return p


@pytest.mark.parametrize(
    "flags, native",
    [
        ("fpu sse avx2 fma", False),  # AVX2 only (e.g. AMD EPYC Rome)
        ("fpu avx2 avx512f avx512bw avx512vl", False),  # AVX-512 without BF16
        ("fpu avx2 avx512f avx512_bf16", True),
        ("fpu avx2 amx_tile amx_bf16", True),
    ],
)
def test_cpu_native_bf16_read_from_cpuinfo_flags(tmp_path, flags, native):
    assert prec.cpu_has_native_bf16(_cpuinfo(tmp_path, flags)) is native


def test_unreadable_cpuinfo_means_no_native_bf16(tmp_path):
    assert prec.cpu_has_native_bf16(tmp_path / "missing") is False


@pytest.mark.parametrize("native, expected", [(False, "float32"), (True, "bfloat16")])
def test_auto_follows_the_cpu(monkeypatch, caplog, native, expected):
    monkeypatch.setattr(prec, "cpu_has_native_bf16", lambda: native)
    with caplog.at_level(logging.INFO, logger=prec.__name__):
        assert prec.resolve_precision("auto", "cpu") == expected
    assert f"precision auto -> {expected}" in caplog.text


@pytest.mark.parametrize(
    "env, limit",
    [
        ({}, None),
        ({"ATEN_CPU_CAPABILITY": "avx2"}, "ATEN_CPU_CAPABILITY=avx2"),
        ({"ATEN_CPU_CAPABILITY": "avx512"}, None),
        ({"ONEDNN_MAX_CPU_ISA": "AVX2"}, "ONEDNN_MAX_CPU_ISA=AVX2"),
        ({"ONEDNN_MAX_CPU_ISA": "avx512_core"}, "ONEDNN_MAX_CPU_ISA=avx512_core"),
        ({"ONEDNN_MAX_CPU_ISA": "AVX512_CORE_BF16"}, None),
        ({"ONEDNN_MAX_CPU_ISA": "ALL"}, None),
    ],
)
def test_isa_limits_in_the_environment_are_read(env, limit):
    assert prec.cpu_bf16_disabled_by(env) == limit


@pytest.mark.parametrize("name, value", [("ATEN_CPU_CAPABILITY", "avx2"),
                                         ("ONEDNN_MAX_CPU_ISA", "AVX2")])
def test_auto_honours_an_isa_limit_on_a_bf16_cpu(monkeypatch, caplog, name, value):
    # what torch itself would use: a bf16 CPU limited to AVX2 emulates bf16 again
    monkeypatch.setattr(prec, "cpu_has_native_bf16", lambda: True)
    monkeypatch.setenv(name, value)
    with caplog.at_level(logging.INFO, logger=prec.__name__):
        assert prec.resolve_precision("auto", "cpu") == "float32"
    assert f"{name}={value}" in caplog.text


def test_explicit_choice_is_kept_and_bad_value_names_the_parameter(monkeypatch):
    monkeypatch.setattr(prec, "cpu_has_native_bf16", lambda: False)
    assert prec.resolve_precision("bfloat16", "cpu") == "bfloat16"
    assert prec.resolve_precision("float32", "cpu") == "float32"
    with pytest.raises(ValueError, match="enhancement.engine.precision"):
        prec.resolve_precision("fp16", "cpu")


def test_auto_on_a_cpu_without_bf16_gives_float32_output(monkeypatch):
    # "auto" must give exactly the float32 result where the CPU has no native bf16,
    # and differ from it (bf16 rounding) where it has.
    torch.manual_seed(0)
    model = build_model("small").eval()
    maps = np.random.default_rng(0).random((2, 32, 32)).astype(np.float32) * 100
    f32 = enhance_maps(model, maps, 4, precision="float32", num_threads=1).data
    bf16 = enhance_maps(model, maps, 4, precision="bfloat16", num_threads=1).data
    monkeypatch.setattr(prec, "cpu_has_native_bf16", lambda: False)
    auto_off = enhance_maps(model, maps, 4, device="cpu", num_threads=1).data
    np.testing.assert_array_equal(auto_off, f32)
    monkeypatch.setattr(prec, "cpu_has_native_bf16", lambda: True)
    auto_on = enhance_maps(model, maps, 4, device="cpu", num_threads=1).data
    np.testing.assert_array_equal(auto_on, bf16)
    assert not np.array_equal(f32, bf16)


@pytest.mark.parametrize("native, expected", [(False, "float32"), (True, "bfloat16")])
def test_enhanced_stack_metadata_records_the_resolved_precision(monkeypatch, native, expected):
    from xrf_sr_kedro.inference import enhance_stack
    from xrf_sr_kedro.types import XRFStack

    monkeypatch.setattr(prec, "cpu_has_native_bf16", lambda: native)
    torch.manual_seed(0)
    maps = np.random.default_rng(1).random((1, 1, 32, 32)).astype(np.float32) * 10
    stack = XRFStack(maps, pixel_size_nm=120.0, elements=("Fe_K",))
    out = enhance_stack(build_model("small").eval(), stack, {"config": {"scale": 4}},
                        device="cpu", num_threads=1)
    assert out.metadata["enhancement"]["precision"] == expected
