"""Build hook: generates the protobuf/gRPC Python modules from protos/ at build time.

Generated code is never committed or edited by hand; every install (wheel or editable)
regenerates it from the single source of the wire schema in protos/.
"""

from __future__ import annotations

from pathlib import Path

try:
    from hatchling.builders.hooks.plugin.interface import BuildHookInterface
except ImportError:  # `make protos` runs generate_protos() without hatchling installed
    BuildHookInterface = object  # type: ignore[assignment,misc]


def generate_protos(root: Path) -> list[Path]:
    """Compile every .proto under protos/ into src/; returns the generated files."""
    import grpc_tools
    from grpc_tools import protoc

    proto_root = root / "protos"
    out = root / "src"
    include = Path(grpc_tools.__file__).parent / "_proto"
    sources = sorted(str(p.relative_to(proto_root)) for p in proto_root.rglob("*.proto"))
    args = ["protoc", f"-I{proto_root}", f"-I{include}", f"--python_out={out}",
            f"--pyi_out={out}", f"--grpc_python_out={out}", *sources]
    if protoc.main(args) != 0:
        raise RuntimeError(f"protoc failed on {sources}")
    generated = []
    for source in sources:
        stem = (out / source).with_suffix("")
        generated += [Path(f"{stem}_pb2.py"), Path(f"{stem}_pb2.pyi"), Path(f"{stem}_pb2_grpc.py")]
    return [p for p in generated if p.exists()]


class CustomBuildHook(BuildHookInterface):
    def initialize(self, version: str, build_data: dict) -> None:
        root = Path(self.root)  # the project root (pyproject.toml's folder)
        generated = generate_protos(root)
        if version == "editable":
            return  # src/ is on the path; the generated files are found in place
        for path in generated:  # .gitignore hides them from file selection
            build_data["force_include"][str(path)] = str(path.relative_to(root / "src"))
