"""Generated documentation is current: docs/config.md from the schema, the README's loss table from the registry."""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_config_reference_is_current():
    from selfinv.config_reference import config_reference

    assert (ROOT / "docs" / "config.md").read_text() == config_reference(), \
        "docs/config.md is stale: selfinv config reference > docs/config.md"


def test_readme_loss_table_is_the_registry_the_advisor_reads():
    from selfinv.losses import summary_table

    text = (ROOT / "README.md").read_text()
    block = text[text.index("<!-- losses:start -->") + len("<!-- losses:start -->"):text.index("<!-- losses:end -->")]
    assert block.strip() == summary_table().strip(), "README's loss table is stale: paste selfinv.losses.summary_table()"


def test_every_config_key_is_documented():
    from selfinv.config import Config, DataConfig, TrainingConfig

    for model in (Config, DataConfig, TrainingConfig):
        missing = [k for k, f in model.model_fields.items() if not f.description]
        assert not missing, f"{model.__name__}: undocumented keys {missing}"
