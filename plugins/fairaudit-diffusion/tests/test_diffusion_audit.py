"""The diffusion editor inside a whole audit: counterfactual and counterfactual-augment arms,
judged by the core's counterfactual metrics against synthetic_cxr's oracle."""

from __future__ import annotations

import textwrap
from pathlib import Path

from fairaudit.testing.runs import cli, load_result, only_run_dir


def test_audit_with_diffusion_counterfactual_arms(tiny_dir: Path, tmp_path: Path) -> None:
    spec = tmp_path / "spec.yaml"
    spec.write_text(textwrap.dedent(f"""\
        name: diffusion-cf
        seed: 1
        dataset:
          name: synthetic_cxr
          params: {{n_samples: 60, image_size: 32, seed: 1}}
        attributes: [sex]
        split: {{test_size: 0.3, val_size: 0.0}}
        model: {{name: logistic, params: {{C: 0.1}}}}
        generators:
          - name: sd_counterfactual
            label: diffusion
            evaluation: [counterfactuals, counterfactual_augment]
            counterfactual_factor: device
            params: {{model_dir: "{tiny_dir}", finetune: lora, lr: 0.01, max_steps: 10, batch_size: 8,
                      num_inference_steps: 4, classify_trials: 1, device: cpu, progress: false,
                      validation_every: 5, validation_prompts: ["chest x-ray"]}}
        metrics: [counterfactual_quality, counterfactual_sensitivity]
        statistics: {{n_boot: 20, n_permutations: 20, min_group_size: 2}}
        report: {{formats: [html]}}
        """))
    result = cli("run", spec, "-o", tmp_path / "out", "-q")
    assert result.exit_code == 0, result.output
    run_dir = only_run_dir(tmp_path / "out")
    res = load_result(run_dir)
    arms = {a.name: a for a in res.arms}
    assert [a.status for a in res.arms] == ["ok", "ok", "ok"], [a.error for a in res.arms]
    edits = arms["diffusion"]
    assert edits.params["evaluation"] == "counterfactuals"
    quality = {m.metric: m for m in edits.metrics if m.attribute == "sex"}
    # a random tiny pipeline edits badly, but every quality measure is computed on real pairs
    for name in ("cf_classifier_flip_rate", "cf_artefact_flip_rate", "cf_identity_l1", "cf_identity_ssim"):
        assert quality[name].status == "ok" and quality[name].value is not None, name
    assert quality["cf_identity_l1"].details["oracle"] == "oracle:device"
    grids = [b for b in edits.blocks if b.kind == "image_grid"]
    assert any((run_dir / b.path).is_file() for b in grids if b.path)
    # the plugin's own blocks reach the report: none is dropped as unreadable
    assert not [w for w in res.warnings if "report content not shown" in w], res.warnings
    titles = [b.title for b in edits.blocks]
    assert titles[0] == "Plumbing check, not a result" and edits.blocks[0].kind == "text"
    assert "Validation samples during fine-tuning" in titles and "Fine-tuning" in titles
    assert (run_dir / "figures" / "sd_counterfactual_validation.png").is_file()
    html = (run_dir / "report.html").read_text(encoding="utf-8")
    assert "Plumbing check, not a result" in html and "random weights" in html
    assert "Validation samples during fine-tuning" in html
    augmented = arms["diffusion (counterfactual augment)"]
    assert any(m.metric == "cf_sensitivity_device" and m.value is not None for m in augmented.metrics)
