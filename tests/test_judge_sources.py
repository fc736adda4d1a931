"""Every judge says what its prompt was checked against; unverified ones are marked."""

from __future__ import annotations

from capsafe.analysis.analyses import run_analyses
from capsafe.cli import main
from capsafe.judges import JUDGES
from capsafe.judges.sources import OWN, SOURCES, describe, judge_source
from capsafe.report.methods import methods_section
from tests.helpers.experiment_rows import RowBuilder


def test_every_registered_judge_declares_its_source():
    assert set(JUDGES.names()) <= set(SOURCES) | set(OWN)


def test_stored_names_of_a_family_read_as_the_family():
    assert judge_source("shieldgemma_harassment") is SOURCES["shieldgemma"]
    assert judge_source("granite_guardian_social_bias") is SOURCES["granite_guardian"]
    assert judge_source("nobody") is None
    assert describe("llama_guard_4")[0].startswith("UNVERIFIED")
    assert not any(line.startswith("UNVERIFIED") for line in describe("llama_guard_3"))


def test_list_judges_verbose_marks_unverified_judges(capsys):
    assert main(["list", "judges", "--verbose"]) == 0
    out = capsys.readouterr().out
    lg4 = out[out.index("llama_guard_4\n") :].split("\n")[1]
    assert lg4.strip().startswith("UNVERIFIED")
    assert "checked: the genuine 8B and 1B templates" in out


def test_the_methods_section_names_unverified_judges():
    b = RowBuilder()
    base = b.base()
    b.labels(base, "harmful", [1, 0], judge="llama_guard_3")
    b.labels(base, "harmful", [1, 1], judge="llama_guard_4")
    html = methods_section(b.rows(), run_analyses(b.rows(), n_boot=10))
    assert "checked against the judges' own sources: llama_guard_3." in html
    assert "<b>Unverified judges</b>: llama_guard_4 (Llama Guard 4" in html
