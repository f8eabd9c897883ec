"""Alpha-shift on real chest X-rays: COVID-19 vs other findings, bias direction = view (AP/PA).

    python plugins/fairaudit-alphashift/benchmarks/real_cxr_view.py [--size 64] [--folds 5]

Data: ``covid-chestxray-dataset`` pack in ``$FAIRAUDIT_SHARED_DATA`` (default
``<repo>/../shared/data``; see its SOURCE.md; CC BY-NC-SA 4.0).  Frontal films only (PA vs
AP/AP Supine), ``finding == "todo"`` dropped, label = COVID-19.  AP films are mostly COVID
(a known acquisition shortcut), so view is the bias direction.  Exits cleanly (status 0,
message) when the pack is absent.

Patient-grouped, label-stratified K-fold: on each training fold the autoencoder is trained and
the view direction estimated; two logistic heads are fitted on the latents, plain (baseline)
and with randomised alpha shifts (mitigated).  On the held-out fold we report task AUC and
three reliance-on-view measures (there is no oracle for real images):

* ``latent``: mean |p(z) - p(z -/+ d)|, moving each code to the other view's side
  (by construction what the mitigation targets, so an upper bound on its benefit);
* ``decoded``: the same move made in image space: decode both codes, re-encode, score;
* ``view_auc``: how well the score separates AP from PA *within* each finding class
  (0.5 = the score carries no view information beyond the finding).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

REPO = Path(__file__).resolve().parents[3]
DEFAULT_DATA = Path(os.environ.get("FAIRAUDIT_SHARED_DATA", REPO.parent / "shared" / "data"))
PACK = "covid-chestxray-dataset"


def load_pack(root: Path) -> tuple[np.ndarray, np.ndarray, pd.DataFrame, np.ndarray] | None:
    """Frontal films with a known finding: images (n, 1, 256, 256) in [0, 1], COVID label,
    sensitive (view AP/PA, sex), patient ids.  ``None`` when the pack is missing."""
    folder = root / PACK
    npz, index_csv = folder / "covid_cxr_256.npz", folder / "covid_cxr_256_index.csv"
    if not (npz.is_file() and index_csv.is_file()):
        return None
    index = pd.read_csv(index_csv)
    keep = index["view"].isin(["PA", "AP", "AP Supine"]) & (index["finding"] != "todo")
    rows = index[keep].reset_index(drop=True)
    with np.load(npz, allow_pickle=False) as pack:
        images = pack["images"][rows["npz_index"].to_numpy()]
        names = pack["filename"][rows["npz_index"].to_numpy()]
    if not np.array_equal(names.astype(str), rows["filename"].astype(str).to_numpy()):
        raise RuntimeError("npz rows and index CSV disagree; is the pack intact?")
    y = rows["finding"].str.startswith("COVID-19").to_numpy().astype(int)
    sensitive = pd.DataFrame({"view": np.where(rows["view"] == "PA", "PA", "AP"),
                              "sex": rows["sex"].fillna("unknown").to_numpy()})
    images = (images.astype(np.float32) / 255.0)[:, None]
    return images, y, sensitive, rows["patientid"].astype(str).to_numpy()


def view_auc_within_class(scores: np.ndarray, view_ap: np.ndarray, y: np.ndarray) -> float:
    """Size-weighted mean over finding classes of the AUC of ``scores`` for AP vs PA."""
    from sklearn.metrics import roc_auc_score

    total, weight = 0.0, 0
    for value in (0, 1):
        m = y == value
        if len(np.unique(view_ap[m])) == 2:
            total += m.sum() * roc_auc_score(view_ap[m], scores[m])
            weight += int(m.sum())
    return total / weight if weight else float("nan")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--width", type=float, default=0.5)
    parser.add_argument("--depth", type=float, default=0.5)
    parser.add_argument("--latent-dim", type=int, default=64)
    parser.add_argument("--alpha-max", type=float, default=2.0)
    parser.add_argument("--n-augment", type=int, default=4)
    parser.add_argument("--C", type=float, default=0.1, help="inverse L2 strength of the heads")
    parser.add_argument("--threads", type=int, default=int(os.environ.get("OMP_NUM_THREADS", "2")))
    parser.add_argument("--out", type=Path, default=REPO / "reports" / "alphashift-real-cxr")
    args = parser.parse_args(argv)

    loaded = load_pack(args.data)
    if loaded is None:
        print(f"skipped: real chest X-ray pack not found under {args.data / PACK}")
        return 0
    import torch
    from fairaudit_alphashift import AlphaShiftDebiaser
    from fairaudit_alphashift.evaluation import auc, reliance
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import StratifiedGroupKFold

    from fairaudit import RunContext

    torch.set_num_threads(args.threads)
    os.environ.setdefault("FAIRAUDIT_NO_PROGRESS", "1")
    images, y, sensitive, patients = loaded
    ap = (sensitive["view"] == "AP").to_numpy().astype(int)
    print(f"{len(y)} frontal films, {len(np.unique(patients))} patients; COVID {y.sum()}, "
          f"other {len(y) - y.sum()}; AP {ap.sum()} (COVID {y[ap == 1].mean():.0%}), "
          f"PA {len(ap) - ap.sum()} (COVID {y[ap == 0].mean():.0%})")
    arms = ("baseline", "mitigated")
    pooled: dict[str, dict[str, np.ndarray]] = {
        a: {k: np.zeros(len(y)) for k in ("p", "p_latent_cf", "p_dec", "p_dec_cf")} for a in arms}
    fold_auc: dict[str, list[float]] = {a: [] for a in arms}
    recon = []
    cv = StratifiedGroupKFold(n_splits=args.folds, shuffle=True, random_state=0)
    start = time.perf_counter()
    for fold, (tr, te) in enumerate(cv.split(images, y, groups=patients)):
        fold_dir = args.out / f"fold{fold}"
        deb = AlphaShiftDebiaser(
            bias_attributes=["view"], image_size=args.size, latent_dim=args.latent_dim,
            width=args.width, depth=args.depth, max_epochs=args.epochs, alpha_max=args.alpha_max,
            n_augment=args.n_augment, device="cpu", progress=False, random_state=fold)
        deb.bind(RunContext(device="cpu", work_dir=fold_dir if fold == 0 else None, progress=False))
        sens_tr = sensitive.iloc[tr].reset_index(drop=True)
        deb.fit(images[tr], y[tr], sensitive_features=sens_tr)
        recon.append((deb.train_report_.val_ssim, deb.train_report_.epochs))
        Z_tr = deb.transform(images[tr])
        Za, ya, _ = deb.transform_train(images[tr], y[tr], sensitive_features=sens_tr)
        # one fixed standardisation (from the plain training codes) for both heads, so the
        # L2 penalty means the same thing for both
        mean, sd = Z_tr.mean(axis=0), Z_tr.std(axis=0) + 1e-6

        def std(Z: np.ndarray, mean: np.ndarray = mean, sd: np.ndarray = sd) -> np.ndarray:
            return (Z - mean) / sd

        heads = {"baseline": LogisticRegression(C=args.C, max_iter=5000).fit(std(Z_tr), y[tr]),
                 "mitigated": LogisticRegression(C=args.C, max_iter=5000).fit(std(Za), ya)}
        Z = deb.transform(images[te])
        d = deb.direction_for("view")  # reference AP -> PA
        sign = np.where(ap[te] == 1, 1.0, -1.0)[:, None]  # AP moves towards PA and back
        Z_cf = Z + sign * d[None, :]
        Z_dec, Z_dec_cf = deb.transform(deb.decode(Z)), deb.transform(deb.decode(Z_cf))
        for a, head in heads.items():
            pooled[a]["p"][te] = head.predict_proba(std(Z))[:, 1]
            pooled[a]["p_latent_cf"][te] = head.predict_proba(std(Z_cf))[:, 1]
            pooled[a]["p_dec"][te] = head.predict_proba(std(Z_dec))[:, 1]
            pooled[a]["p_dec_cf"][te] = head.predict_proba(std(Z_dec_cf))[:, 1]
            fold_auc[a].append(auc(y[te], pooled[a]["p"][te]))
        if fold == 0:
            sections = deb.report_blocks()
            (fold_dir / "sections.json").write_text(json.dumps(sections, indent=1))
        print(f"  fold {fold}: n_train {len(tr)}, n_test {len(te)}, held-out SSIM "
              f"{deb.train_report_.val_ssim:.3f} after {deb.train_report_.epochs} epochs, AUC "
              + ", ".join(f"{a} {fold_auc[a][-1]:.3f}" for a in arms)
              + f"  ({time.perf_counter() - start:.0f} s)", flush=True)
    summary = {}
    for a in arms:
        r = pooled[a]
        summary[a] = {
            "auc_pooled": auc(y, r["p"]),
            "auc_fold_mean": float(np.mean(fold_auc[a])),
            "auc_fold_sd": float(np.std(fold_auc[a])),
            "reliance_latent": reliance(r["p"], r["p_latent_cf"]),
            "reliance_decoded": reliance(r["p_dec"], r["p_dec_cf"]),
            "view_auc_within_class": view_auc_within_class(r["p"], ap, y),
        }
    print(f"\n{args.folds}-fold patient-grouped CV, {args.size} px, latent {args.latent_dim}, "
          f"width {args.width}, depth {args.depth}, alpha_max {args.alpha_max}, "
          f"n_augment {args.n_augment}, C {args.C}")
    for a in arms:
        s = summary[a]
        print(f"  {a:<10} AUC pooled {s['auc_pooled']:.3f} (folds {s['auc_fold_mean']:.3f} "
              f"+/- {s['auc_fold_sd']:.3f}) | reliance on view: latent "
              f"{s['reliance_latent']['mean_abs_change']:.3f} (flips "
              f"{s['reliance_latent']['flip_rate']:.2f}), decoded "
              f"{s['reliance_decoded']['mean_abs_change']:.3f} (flips "
              f"{s['reliance_decoded']['flip_rate']:.2f}), view AUC within class "
              f"{s['view_auc_within_class']:.3f}")
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "summary.json").write_text(json.dumps(
        {"args": {k: str(v) for k, v in vars(args).items()}, "summary": summary,
         "held_out_ssim_epochs": recon}, indent=1))
    print(f"figures and summary: {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
