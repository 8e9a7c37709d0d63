"""The wheel's torch requirement, computed at build time (a scikit-build-core dynamic-metadata provider, see
pyproject.toml): the minor version of the torch it compiles against, since a torch extension loads only in that torch
(C++ ABI, symbols). The build therefore needs the user's torch in its environment: an isolated build (pip's default)
has none, and installing one there would compile against whatever torch pip downloads. So it stops here, first."""

ISOLATED_BUILD = (
    "fastlstm compiles against the torch it will run with, so it builds without build isolation, in an environment "
    "that has that torch: `pip install torch==<version>`, then `pip install --no-build-isolation <fastlstm>` or "
    "`pip wheel --no-build-isolation <fastlstm>` (the build tools: scikit-build-core, nanobind, cmeel-eigen, ninja; "
    "tests/setup_env.sh installs them). No torch is importable in this build environment ({error})."
)


def dynamic_metadata(settings, project):
    try:
        import torch
    except ImportError as error:
        raise RuntimeError(ISOLATED_BUILD.format(error=error)) from None
    major, minor = torch.__version__.split("+")[0].split(".")[:2]
    return {"dependencies": [f"torch=={major}.{minor}.*"]}
