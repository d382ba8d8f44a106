import sys
from pathlib import Path

# The library is importable from a source checkout as well as when installed.
sys.path.insert(0, str(Path(snakemake.scriptdir).parents[1] / "src"))  # noqa: F821

from spikeforge.sessions.write import write_session
from spikeforge.workflow.jobs import run

# The output is <root>/patient_data/<patient>/session_<n>; the session is written from <root>.
run(
    snakemake,  # noqa: F821
    lambda sm: write_session(sm.params.spec, Path(sm.output[0]).parents[2], threads=sm.threads),
)
