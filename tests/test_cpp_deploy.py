"""C++ deployment: the ops library loads without Python, and an AOTInductor package of a fastlstm model runs in a
C++ program (tests/cpp/aoti_runner.cpp, built here against the torch wheel's libtorch) that loads the ops library
itself -- no `import fastlstm`, no Python -- with the eager model's results."""

import shutil
import subprocess
from pathlib import Path

import pytest
import torch

import fastlstm

RUNNER = Path(__file__).parent / "cpp" / "aoti_runner.cpp"


def test_the_ops_library_needs_no_python():
    library = Path(fastlstm.ops_library())
    assert library.exists()
    if shutil.which("readelf") is None or shutil.which("nm") is None:
        pytest.skip("readelf / nm not installed")
    needed = subprocess.run(["readelf", "-d", str(library)], capture_output=True, text=True, check=True).stdout
    assert "libpython" not in needed and "libtorch_python" not in needed, needed
    undefined = subprocess.run(["nm", "-D", "--undefined-only", str(library)], capture_output=True, text=True,
                               check=True).stdout.split()
    assert not [symbol for symbol in undefined if symbol.startswith("Py") or symbol.startswith("_Py")]


def build_runner(directory):
    torch_dir = Path(torch.__file__).parent
    binary = directory / "aoti_runner"
    command = ["g++", "-std=c++20", "-O1", str(RUNNER), "-o", str(binary),
               "-I", str(torch_dir / "include"), "-I", str(torch_dir / "include/torch/csrc/api/include"),
               "-L", str(torch_dir / "lib"), f"-Wl,-rpath,{torch_dir / 'lib'}", "-ltorch", "-ltorch_cpu", "-lc10",
               "-ldl", f"-D_GLIBCXX_USE_CXX11_ABI={int(torch._C._GLIBCXX_USE_CXX11_ABI)}"]
    subprocess.run(command, check=True, capture_output=True, text=True, timeout=900)
    return binary


@pytest.mark.skipif(shutil.which("g++") is None, reason="no C++ compiler")
def test_aoti_package_runs_in_a_cpp_program(tmp_path):
    torch.manual_seed(0)
    model = fastlstm.LSTM(4, 8, num_layers=2, batch_first=False).eval()
    x = torch.randn(5, 3, 4)
    with torch.no_grad():
        expected = model(x)[0]
        program = torch.export.export(model, (x,))
    package = torch._inductor.aoti_compile_and_package(program, package_path=str(tmp_path / "lstm.pt2"))
    runner = build_runner(tmp_path)
    (tmp_path / "x.bin").write_bytes(x.numpy().tobytes())
    # A fresh process with no Python: the runner loads the ops library, then the package.
    result = subprocess.run([str(runner), fastlstm.ops_library(), package, str(tmp_path / "x.bin"), "5", "3", "4",
                             str(tmp_path / "out.bin")], capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr + result.stdout
    got = torch.frombuffer(bytearray((tmp_path / "out.bin").read_bytes()), dtype=torch.float32).view(5, 3, 8)
    torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-6)
    # Without the ops library the same package cannot run: the ops are what it brings.
    bare = subprocess.run([str(runner), "-", package, str(tmp_path / "x.bin"), "5", "3", "4",
                           str(tmp_path / "bare.bin")], capture_output=True, text=True, timeout=600)
    assert bare.returncode != 0 and "fastlstm" in bare.stderr + bare.stdout
