"""An import-linter contract the built-in ones cannot express: "only the standard library".

A forbidden contract lists what may not be imported, so a new dependency would slip past it;
this one lists what may: the package itself and the standard library, nothing else.
"""

from __future__ import annotations

import sys

import grimp
from importlinter import Contract, ContractCheck, fields, output


class StandardLibraryOnlyContract(Contract):
    """Check that each source package imports only itself and the standard library.

    Needs `include_external_packages = true`, so that the graph holds what lies outside the
    root packages.
    """

    type_name = "standard_library_only"

    source_modules = fields.ListField(subfield=fields.ModuleField())

    def check(self, graph: grimp.ImportGraph, verbose: bool) -> ContractCheck:
        """Return the imports of anything outside the package and the standard library."""
        broken: list[tuple[str, str, list[int]]] = []
        for source in self.source_modules:  # type: ignore[attr-defined]
            package = source.name
            members = {package} | graph.find_descendants(package)
            for importer in sorted(members):
                for imported in sorted(graph.find_modules_directly_imported_by(importer)):
                    if imported in members or imported.split(".")[0] in sys.stdlib_module_names:
                        continue
                    details = graph.get_import_details(importer=importer, imported=imported)
                    lines = sorted(detail["line_number"] for detail in details)
                    broken.append((importer, imported, lines))
        return ContractCheck(kept=not broken, metadata={"broken": broken})

    def render_broken_contract(self, check: ContractCheck) -> None:
        """Print each forbidden import with its line numbers."""
        for importer, imported, lines in check.metadata["broken"]:
            where = ", ".join(f"l.{line}" for line in lines)
            output.print_error(f"{importer} -> {imported} ({where})", bold=False)
            output.new_line()
