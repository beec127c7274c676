"""Importers: one module per official file format, one transaction per code set.

- :mod:`.icd10cm` (+ :mod:`.icd10cm_tabular`, :mod:`.icd10cm_history`): CMS ICD-10-CM tabular XML, FY2027
  addenda CSVs and the FY2016-FY2025 history from the annual change lists
- :mod:`.hcpcs`: CMS HCPCS Level II fixed-width file (codes and Level II modifiers)
- :mod:`.pfs`: Physician Fee Schedule RVU CSV
- :mod:`.ncci`: NCCI PTP tab-delimited tables; :mod:`.mue`: MUE CSV tables
- :mod:`.cpt`: an operator's licensed CPT descriptor file
- shipped derived files (``scripts/derive_pyoce.py``, ``scripts/derive_dx_groups.py``):
  :mod:`.hcpcs_quarterly` (HCPCS quarters through April 2026), :mod:`.ncci_shipped`
  (hospital outpatient PTP), :mod:`.code_flags` (add-on codes, ICD-10-CM edit
  flags, CC/MCC, HCC V28)
- :mod:`.icd10cm_index`: the CMS Alphabetic Index, drug and neoplasm table XML (operator files)

:func:`import_sets` is what ``mailbot codes import`` runs; :func:`ensure_loaded`
is what ``serve`` runs (a single query when everything is there already).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from mailbot.codes.importers.base import CodeImportError, ImportResult, Progress
from mailbot.db import Database
from mailbot.models.codes import CodeSetVersion

__all__ = ["CodeImportError", "ImportResult", "ensure_loaded", "import_sets", "shipped_sources"]

log = logging.getLogger(__name__)
# the shipped sets, in import order; "ncci" is the shipped hospital outpatient PTP table
SHIPPED_KINDS = ("icd10cm", "hcpcs", "pfs", "ncci", "addon", "icd10cm_edits", "ms_drg", "cms_hcc")
SHIPPED_NCCI = "pyoce/ncci-hospital-ptp.csv.xz"
SHIPPED_HCPCS_UPDATE = "pyoce/hcpcs-level2.csv.gz"
HISTORY_MARKER = "FY2016"  # the oldest ICD-10-CM year: present once the history is imported


def shipped_sources(data_dir: Path) -> dict[str, Path]:
    """Where the shipped files live under ``data_dir`` (``data/codesets``)."""
    from mailbot.codes.importers.icd10cm import shipped_tabular

    hcpcs = sorted((data_dir / "hcpcs").glob("HCPC*_ANWEB*.txt"))
    pfs = sorted((data_dir / "pfs").glob("*rvu*.csv"))
    if not hcpcs or not pfs:
        raise CodeImportError(f"{data_dir}: shipped code sets not found (expected hcpcs/HCPC*_ANWEB*.txt and "
                              "pfs/*rvu*.csv); set codes.data_dir")
    from mailbot.codes.importers.code_flags import SETS

    files = {"icd10cm": shipped_tabular(), "icd10cm_addenda": data_dir / "icd10cm-fy2027",
             "icd10cm_history": data_dir / "icd10cm-history",
             "hcpcs": hcpcs[-1], "hcpcs_update": data_dir / SHIPPED_HCPCS_UPDATE, "pfs": pfs[-1],
             "ncci": data_dir / SHIPPED_NCCI}
    files.update({spec.kind: data_dir / spec.folder / spec.file for spec in SETS})
    for kind in ("hcpcs_update", "ncci", *(spec.kind for spec in SETS)):
        if not files[kind].is_file():
            raise CodeImportError(f"{files[kind]}: shipped code set not found; set codes.data_dir")
    return files


def _timed(fn: Callable[[], ImportResult | list[ImportResult]]) -> list[ImportResult]:
    start = time.perf_counter()
    out = fn()
    results = out if isinstance(out, list) else [out]
    for result in results:
        result.seconds = round(time.perf_counter() - start, 2)
    return results


def import_sets(db: Database, *, source: Path | None = None, kinds: Sequence[str] = SHIPPED_KINDS,
                ncci: Sequence[Path] = (), mue: Sequence[Path] = (), cpt: Path | None = None,
                ncci_setting: str | None = None, progress: Progress | None = None,
                index: Sequence[Path] = ()) -> list[ImportResult]:
    """Import the chosen shipped sets from ``source`` plus operator files.

    Each code set (and each operator file) is its own transaction: a bad file
    raises :class:`CodeImportError` and leaves that set as it was; sets
    imported before it stay imported."""
    from mailbot.codes.importers import cpt as cpt_mod
    from mailbot.codes.importers import code_flags, hcpcs, icd10cm, ncci_shipped, pfs
    from mailbot.codes.importers import mue as mue_mod, ncci as ncci_mod

    results: list[ImportResult] = []
    for path in [*ncci, *mue, *([cpt] if cpt else []), *index]:
        if not Path(path).is_file():
            raise CodeImportError(f"{path}: no such file")
    if source is not None and kinds:
        files = shipped_sources(source)
        for kind in kinds:
            with db.session() as session:
                if kind == "icd10cm":
                    addenda = files["icd10cm_addenda"] if files["icd10cm_addenda"].is_dir() else None
                    history = files["icd10cm_history"] if files["icd10cm_history"].is_dir() else None
                    results += _timed(lambda: icd10cm.import_icd10cm(session, files["icd10cm"], addenda, progress,
                                                                     history))
                elif kind == "hcpcs":
                    results += _timed(lambda: hcpcs.import_hcpcs(session, files["hcpcs"], progress,
                                                                 files["hcpcs_update"]))
                elif kind == "pfs":
                    results += _timed(lambda: pfs.import_pfs(session, files["pfs"], progress))
                elif kind == "ncci":
                    results += _timed(lambda: ncci_shipped.import_shipped_ptp(session, files["ncci"], progress))
                elif kind in code_flags.KINDS:
                    results += _timed(lambda: code_flags.import_flags(session, code_flags.flag_set(kind),
                                                                      files[kind], progress))
                else:
                    raise CodeImportError(f"unknown code set {kind!r} (known: {', '.join(SHIPPED_KINDS)})")
    for path in ncci:
        with db.session() as session:
            results += _timed(lambda: ncci_mod.import_ptp(session, Path(path), ncci_setting, progress))
    for path in mue:
        with db.session() as session:
            results += _timed(lambda: mue_mod.import_mue(session, Path(path), progress))
    if cpt:
        with db.session() as session:
            results += _timed(lambda: cpt_mod.import_cpt(session, Path(cpt), progress=progress))
    if index:
        from mailbot.codes.importers import icd10cm_index

        with db.session() as session:  # the three files are one set: one transaction
            results += _timed(lambda: icd10cm_index.import_index(session, [Path(p) for p in index], progress))
    if any(not r.skipped for r in results):
        from mailbot.codes import index, knowledge

        index.invalidate()
        knowledge.invalidate()
    return results


def operator_files(ncci_dir: str) -> tuple[list[Path], list[Path]]:
    """PTP tables (``*.txt``) and MUE tables (``*.csv``) in ``codes.ncci_dir``."""
    if not ncci_dir:
        return [], []
    directory = Path(ncci_dir)
    if not directory.is_dir():
        raise CodeImportError(f"codes.ncci_dir = {ncci_dir!r} is not a directory")
    return sorted(directory.glob("*.txt")), sorted(directory.glob("*.csv"))


def _present(session) -> set[str]:
    """The shipped sets already loaded.  NCCI counts only with a hospital table
    (an operator's practitioner table is not the shipped one); HCPCS only with
    its quarterly update (databases imported before it was shipped get it)."""
    rows = session.execute(select(CodeSetVersion.kind, CodeSetVersion.setting, CodeSetVersion.source)).all()
    present = {kind for kind, setting, _ in rows if kind not in ("ncci", "hcpcs")}
    if any(kind == "ncci" and setting == "hospital" for kind, setting, _ in rows):
        present.add("ncci")
    if any(kind == "hcpcs" and source.startswith("pyoce") for kind, _, source in rows):
        present.add("hcpcs")
    return present


def ensure_loaded(ctx) -> None:
    """Import the shipped sets (and configured operator files) if missing.

    A fast no-op (one query) when every shipped set is present; used by
    ``mailbot serve`` when ``codes.load_on_serve`` is true."""
    with ctx.db.read() as session:
        loaded = {(kind, version) for kind, version in session.execute(select(CodeSetVersion.kind, CodeSetVersion.version))}
        present = _present(session)
    missing = [k for k in SHIPPED_KINDS if k not in present]
    if "icd10cm" in present and ("icd10cm", HISTORY_MARKER) not in loaded \
            and (ctx.settings.codes.data_dir / "icd10cm-history").is_dir():
        missing.append("icd10cm")  # installed before the history shipped: re-import ICD-10-CM with it
    cfg = ctx.settings.codes
    with ctx.db.read() as session:
        kinds = {kind for (kind,) in session.execute(select(CodeSetVersion.kind).distinct())}
    ncci, mue = operator_files(cfg.ncci_dir) if "ncci" not in kinds or "mue" not in kinds else ([], [])
    cpt = Path(cfg.cpt_file) if cfg.cpt_file and "cpt" not in present else None
    if not (missing or ncci or mue or cpt):
        return
    log.info("importing code sets: %s", ", ".join([*missing, *(["ncci"] if ncci else []),
                                                  *(["mue"] if mue else []), *(["cpt"] if cpt else [])]))
    try:
        results = import_sets(ctx.db, source=cfg.data_dir, kinds=missing, ncci=ncci, mue=mue, cpt=cpt)
    except IntegrityError:
        # several processes started at once (scaled mode): another one imported
        # the same version first; its transaction won and ours rolled back.
        log.info("code sets were imported concurrently by another process")
        return
    for result in results:
        log.info("code set %s %s: %s rows in %.1fs%s", result.kind, result.version, result.rows, result.seconds,
                 " (already loaded)" if result.skipped else "")
