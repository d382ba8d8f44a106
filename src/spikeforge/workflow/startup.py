"""A run as the workflow starts it: the config resolved, the chains it enables laid out,
every problem found before any job, the job count and output size printed, and the run
folder claimed by this config (so two configs' outputs never mix)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from spikeforge import __version__
from spikeforge.core.errors import InputError
from spikeforge.core.files import atomic_path
from spikeforge.workflow import checks, sizes
from spikeforge.workflow.config import SCHEMA, config_problems, fill_defaults, load_schema
from spikeforge.workflow.layout import (
    CorticalLayout,
    EEGLayout,
    PairedLayout,
    RunFolders,
    SessionsLayout,
    SpikeTrainsLayout,
)

CHAINS = ("eeg", "paired", "sessions", "cortical", "spiketrains")
RUN_RECORD = "run.json"


@dataclass
class Run:
    config: dict[str, Any]
    config_files: list[str]
    folders: RunFolders
    eeg: EEGLayout | None = None
    paired: PairedLayout | None = None
    sessions: SessionsLayout | None = None
    cortical: CorticalLayout | None = None
    spiketrains: SpikeTrainsLayout | None = None
    warnings: list[str] = field(default_factory=list)

    @property
    def record_path(self) -> Path:
        return Path(self.folders.results) / RUN_RECORD

    def chains(self) -> list[tuple[str, Any]]:
        layouts = (
            ("eeg", self.eeg),
            ("paired", self.paired),
            ("sessions", self.sessions),
            ("cortical", self.cortical),
            ("spiketrains", self.spiketrains),
        )
        return [(name, layout) for name, layout in layouts if layout is not None]

    @property
    def qc(self) -> bool:
        return bool(self.config.get("qc", {}).get("enabled", False))

    def qc_layouts(self) -> list[Any]:
        """The enabled chains that have QC figures (when qc.enabled)."""
        if not self.qc:
            return []
        return [layout for _, layout in self.chains() if hasattr(layout, "qc_targets")]

    def targets(self) -> list[str]:
        found = [target for _, layout in self.chains() for target in layout.targets()]
        return found + [target for layout in self.qc_layouts() for target in layout.qc_targets()]

    def job_counts(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for _, layout in self.chains():
            counts.update(layout.job_counts())
        for layout in self.qc_layouts():
            counts.update(layout.qc_job_counts())
        return counts

    def output_bytes(self) -> dict[str, dict[str, int]]:
        by_chain = {}
        if self.eeg is not None:
            by_chain["eeg"] = sizes.eeg_bytes(self.eeg)
        if self.paired is not None:
            by_chain["paired"] = sizes.paired_bytes(self.paired)
        if self.sessions is not None:
            by_chain["sessions"] = sizes.session_bytes(self.sessions)
        if self.cortical is not None:
            by_chain["cortical"] = sizes.cortical_bytes(self.cortical)
        if self.spiketrains is not None:
            by_chain["spiketrains"] = sizes.spiketrain_bytes(self.spiketrains)
        return by_chain

    def problems(self) -> list[str]:
        """Every problem of the config and its inputs, one line each."""
        if not self.chains():
            return [
                "config: no chain is enabled (set eeg.enabled, paired.enabled, "
                "sessions.enabled, cortical.enabled or spiketrains.enabled to true)"
            ]
        found = self.ownership_problems()
        if self.eeg is not None:
            found += checks.eeg_problems(self.eeg)
        if self.paired is not None:
            found += checks.paired_problems(self.paired)
        if self.sessions is not None:
            found += checks.session_problems(self.sessions)
        if self.cortical is not None:
            found += checks.cortical_problems(self.cortical)
        if self.spiketrains is not None:
            found += checks.spiketrain_problems(self.spiketrains)
        if found:
            return found
        by_chain = self.output_bytes()
        total = sum(sum(kinds.values()) for kinds in by_chain.values())
        limit = float(self.config["max_output_gb"])
        if total > limit * 1e9:
            found.append(checks.problem(
                "max_output_gb",
                f"this config would write about {sizes.gigabytes(total)} "
                f"({_breakdown(by_chain)}), more than max_output_gb = {limit:g}; raise it if "
                "that is intended",
            ))  # fmt: skip
        if not found and self.config["check_free_disk"]:
            found += self.free_disk_problems(total, by_chain)
        return found

    def free_disk_problems(self, total: int, by_chain: dict[str, dict[str, int]]) -> list[str]:
        """The outputs still to be written against the free space of the run folder's disk."""
        existing = sum(
            sizes.folder_bytes(f) for f in (self.folders.results, self.folders.resources)
        )
        needed = total - existing
        free = sizes.free_bytes(self.folders.root)
        if needed <= free:
            return []
        return [checks.problem(
            "check_free_disk",
            f"this config would write about {sizes.gigabytes(needed)} more "
            f"({_breakdown(by_chain)}), but {self.folders.root}/ has "
            f"{sizes.gigabytes(free)} free; free space, turn off layouts you do not need, or "
            "set check_free_disk: false to run anyway",
        )]  # fmt: skip

    def summary(self) -> str:
        """'N jobs, about X GB under <run_dir>/ (eeg: ...; paired: ...)': the start-up line."""
        by_chain = self.output_bytes()
        total = sum(sum(kinds.values()) for kinds in by_chain.values())
        return (
            f"{sum(self.job_counts().values())} jobs, about {sizes.gigabytes(total)} under "
            f"{self.folders.root}/ ({_breakdown(by_chain)})"
        )

    # ------------------------------------------------------------ run folder ownership
    def record(self) -> dict[str, Any]:
        return {"config_files": self.config_files, "spikeforge": __version__,
                "config": self.config}  # fmt: skip

    def ownership_problems(self) -> list[str]:
        """A run folder belongs to the config file(s) that first ran in it."""
        if not self.record_path.is_file():
            return []
        try:
            owner = json.loads(self.record_path.read_text())["config_files"]
        except (OSError, ValueError, KeyError):
            return []  # unreadable: the next run rewrites it
        if owner == self.config_files:
            return []
        return [checks.problem(
            "run_dir",
            f"{self.folders.root}/ holds the run of {', '.join(owner) or 'another config'} "
            f"(see {self.record_path}); give this config a run_dir of its own, or delete "
            f"{self.folders.results}/ to start over",
        )]  # fmt: skip

    def write_record(self) -> None:
        """Claim the run folder for this config (when jobs start, never on a dry run)."""
        with atomic_path(self.record_path, suffix=".json") as tmp:
            tmp.write_text(json.dumps(self.record(), indent=1, sort_keys=True))


def _breakdown(by_chain: dict[str, dict[str, int]]) -> str:
    parts = []
    for chain, kinds in by_chain.items():
        detail = ", ".join(f"{k} {sizes.gigabytes(v)}" for k, v in kinds.items() if v)
        parts.append(f"{chain}: {detail or 'nothing'}")
    return "; ".join(parts)


def start_run(
    config: dict[str, Any],
    config_files: Sequence[str | Path],
    schema_path: str | Path = SCHEMA,
) -> tuple[Run | None, list[str]]:
    """(the run, []) or (None, problems) for a config as Snakemake loaded it; the config is
    completed with the schema's defaults in place."""
    problems = config_problems(config, schema_path)
    if problems:
        return None, problems
    given = {chain: set(config.get(chain) or {}) - {"enabled"} for chain in CHAINS}
    fill_defaults(config, load_schema(schema_path))
    folders = RunFolders.of(config["run_dir"])
    run = Run(config, [str(Path(f).resolve()) for f in config_files], folders)
    if config["eeg"]["enabled"]:
        run.eeg = EEGLayout(config["eeg"], config["seed"], folders)
    if config["paired"]["enabled"]:
        run.paired = PairedLayout(config["paired"], config["seed"], folders)
    if config["sessions"]["enabled"]:
        run.sessions = SessionsLayout(config["sessions"], config["seed"], folders)
    if config["cortical"]["enabled"]:
        run.cortical = CorticalLayout(config["cortical"], config["seed"], folders)
    if config["spiketrains"]["enabled"]:
        run.spiketrains = SpikeTrainsLayout(
            config["spiketrains"], folders, run.paired, run.sessions
        )
    for chain in CHAINS:
        if given[chain] and not config[chain]["enabled"]:
            run.warnings.append(
                f"config key {chain}: settings given but {chain}.enabled is false: "
                "the chain does not run"
            )
    try:
        problems = run.problems()
    except InputError as error:
        problems = [str(error)]
    return (None, problems) if problems else (run, [])
