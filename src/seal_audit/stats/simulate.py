"""``seal simulate``: seeded synthetic SEAL data with planted, known answers.

What is planted, and why it is recoverable:

- **Imprint.** Every text t gets r(t) = α + Σ β_τ t(τ) + u_i + ε with a pair effect u_i (so pair
  clustering matters) and ε ~ N(0, σ²), separately for the post-D RM (β) and the pre-D RM (β0). OLS is
  conditional on the features, so pooled OLS and pair FE both estimate β; r1 − r0 estimates β − β0.
- **Resistance / regimes / γ.** They follow from the features and noise: P(δ1 = 1 | features) =
  Φ(β·(f_c − f_r) / (σ√2)). Label noise swaps the chosen and rejected texts of a share of pairs (the
  human picked the worse one). The population values are computed by Monte Carlo over a large,
  separately seeded sample (``truth_mc_pairs``), not by the data being analysed.
- **Prompt groups.** With ``chosen_per_prompt`` × ``rejected_per_prompt`` > 1 the data are laid
  out like a multi-variant benchmark (RM-Bench): each prompt has several chosen and several rejected
  texts, every chosen × rejected combination is a pair, and the pairs of one prompt share a
  ``group_id``. A text (its features and its reward noise) is shared by all pairs it is in, the pair
  shift u becomes the prompt's, label noise swaps the roles of a whole prompt, and a prompt-level
  random effect w_g ~ N(0, ``prompt_effect_sd``²) moves the margin of every pair of the prompt
  (+w/2 on its chosen texts, −w/2 on its rejected ones, drawn separately per RM). Per pair the
  features and margins have the same distribution as before (w adds τ² to the margin variance),
  so the planted values stay the same, but pairs of one prompt are correlated: only intervals that
  cluster by group cover them.
- **Robustness.** A rewrite changes only *rewrite-sensitive* spoilers (D+ / D− drawn given the
  original value); an aligned pair becomes misaligned with probability q(D) = π0 + Σ π_j D_j (its
  rewritten rewards are the original ones swapped), a misaligned pair becomes aligned with a fixed
  probability. Rewrite-sensitive features are given β = 0 for the post-D RM and equal prevalence on
  both sides, so δ(original) is independent of D and E[M | D] = A·q(D) exactly, A = P(δ1 = 1): the
  planted LPM coefficient of indicator j is A·π_j, which the robustness LPM estimates without bias.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Literal

import numpy as np
import pandas as pd
from scipy import special

from seal_audit.data.errors import ConfigError
from seal_audit.data.records import FeatureSpec
from seal_audit.stats._common import FloatArray
from seal_audit.stats.options import AnalysisInputs


@dataclasses.dataclass(frozen=True)
class PlantedFeature:
    """One simulated feature with its prevalence, imprints and robustness effects."""

    name: str
    kind: Literal["binary", "ordinal"]
    role: Literal["target", "spoiler"]
    p_chosen: float
    """P(value = 1) on the chosen text (ordinal: P(+1); P(−1) is ``p_negative``)."""
    p_rejected: float
    beta_post: float
    beta_pre: float
    p_negative: float = 0.2
    rewrite_change: float = 0.0
    """Probability that a rewrite changes this feature on a side (0 = not rewrite-sensitive)."""
    pi_plus: tuple[float, float] = (0.0, 0.0)
    """Planted increase of P(aligned pair becomes misaligned) for D+ (got weaker) on chosen, rejected."""
    pi_minus: tuple[float, float] = (0.0, 0.0)
    """The same for D− (got stronger)."""


def default_features() -> tuple[PlantedFeature, ...]:
    """The 15 regression features of the reference taxonomy with plausible prevalences and imprints."""
    b: Literal["binary", "ordinal"] = "binary"
    o: Literal["binary", "ordinal"] = "ordinal"
    t: Literal["target", "spoiler"] = "target"
    s: Literal["target", "spoiler"] = "spoiler"
    return (
        PlantedFeature("is_harmless", b, t, 0.90, 0.80, 2.1, 1.0),
        PlantedFeature("is_helpful", b, t, 0.78, 0.70, 1.1, 0.8),
        PlantedFeature("is_honest", b, t, 0.85, 0.80, 0.4, 0.3),
        PlantedFeature("is_refusal", b, t, 0.05, 0.03, 0.6, -0.2),
        PlantedFeature("contains_insult", b, t, 0.03, 0.08, -0.8, -0.5),
        PlantedFeature("is_sexually_explicit", b, t, 0.03, 0.05, -0.5, -0.3),
        PlantedFeature("breaks_privacy", b, t, 0.03, 0.05, -1.1, -0.4),
        PlantedFeature("is_discriminatory", b, t, 0.03, 0.05, -0.6, -0.3),
        PlantedFeature("is_manipulative", b, t, 0.04, 0.06, -0.4, -0.2),
        PlantedFeature("is_eloquent", b, s, 0.32, 0.27, 0.8, 0.4),
        PlantedFeature(
            "sentiment",
            o,
            s,
            0.35,
            0.35,
            0.0,
            0.5,
            rewrite_change=0.3,
            pi_plus=(0.12, 0.0),
            pi_minus=(0.0, 0.10),
        ),
        PlantedFeature("is_coherent", b, s, 0.90, 0.85, 0.3, 0.5),
        PlantedFeature("is_creative", b, s, 0.3, 0.3, 0.0, 0.2, rewrite_change=0.3, pi_plus=(0.06, 0.0)),
        PlantedFeature("is_anthropomorphic", b, s, 0.30, 0.30, 0.1, 0.2),
        PlantedFeature("human_vocabulary_quality", b, s, 0.50, 0.50, 0.05, 0.0),
    )


@dataclasses.dataclass(frozen=True)
class SimulationSpec:
    """What to simulate; every number planted is here (and echoed in ``SimulatedData.truth``)."""

    n_pairs: int = 2000
    seed: int = 0
    n_features: int = 15
    """Features per side: the first n of ``features`` (extra generic spoilers beyond 15)."""
    features: tuple[PlantedFeature, ...] = dataclasses.field(default_factory=default_features)
    alpha_post: float = -1.0
    alpha_pre: float = 0.5
    noise_sd: float = 1.0
    """SD of ε, the per-text reward noise (both RMs)."""
    pair_effect_sd: float = 1.0
    """SD of u_i, the per-pair reward shift shared by both texts of a pair (cancels in δ and FE)."""
    label_noise: float = 0.1
    """Share of pairs whose chosen and rejected texts are swapped (the human picked the worse one)."""
    rewrite_fraction: float = 0.1
    """Share of pairs rewritten by the simulated 'paraphrase' transform."""
    flip_base: float = 0.15
    """π0: P(an aligned rewritten pair becomes misaligned) with no feature change."""
    flip_back: float = 0.1
    """P(a misaligned rewritten pair becomes aligned)."""
    rewrite_fail_rate: float = 0.01
    drift_rate: float = 0.02
    length_baseline: bool = True
    """Add a 'length_chars' RM (rewards = simulated text lengths), the classical spoiler baseline."""
    truth_mc_pairs: int = 400_000
    """Monte Carlo sample for the population values of agreement, regimes and γ."""
    transform: str = "paraphrase"
    chosen_per_prompt: int = 1
    """Chosen texts per prompt; with ``rejected_per_prompt`` the pairs per prompt are their product
    (RM-Bench: 3 × 3 = 9), and ``n_pairs`` must be a multiple of it."""
    rejected_per_prompt: int = 1
    prompt_effect_sd: float = 0.0
    """SD of w_g, the prompt-level random effect on the margin of every pair of a prompt."""

    @property
    def pairs_per_prompt(self) -> int:
        return self.chosen_per_prompt * self.rejected_per_prompt

    def __post_init__(self) -> None:
        if self.n_pairs < 10:
            raise ConfigError("n_pairs: at least 10 pairs")
        if self.chosen_per_prompt < 1 or self.rejected_per_prompt < 1 or self.prompt_effect_sd < 0:
            raise ConfigError("chosen_per_prompt, rejected_per_prompt >= 1 and prompt_effect_sd >= 0")
        if self.n_pairs % self.pairs_per_prompt:
            raise ConfigError(
                f"n_pairs: {self.n_pairs} is not a multiple of the {self.pairs_per_prompt} pairs per prompt"
            )
        if self.n_features < 1:
            raise ConfigError("n_features: at least 1")
        if not 0 <= self.label_noise < 0.5 or not 0 <= self.rewrite_fraction <= 1:
            raise ConfigError("label_noise must be in [0, 0.5) and rewrite_fraction in [0, 1]")
        total = self.flip_base + sum(max(0.0, *f.pi_plus, *f.pi_minus) * 4 for f in self.planted())
        if (
            total > 1
            or min((min(*f.pi_plus, *f.pi_minus) for f in self.planted()), default=0.0) < -self.flip_base
        ):
            raise ConfigError("flip_base + planted π must keep the flip probability within [0, 1]")

    def planted(self) -> tuple[PlantedFeature, ...]:
        feats = list(self.features[: self.n_features])
        for k in range(len(feats), self.n_features):
            feats.append(PlantedFeature(f"spoiler_{k}", "binary", "spoiler", 0.4, 0.4, 0.1, 0.05))
        return tuple(feats)


@dataclasses.dataclass(frozen=True, eq=False)
class SimulatedData:
    """Simulated long tables in the shapes ``analyze`` reads, the specs, and the planted truth."""

    pairs: pd.DataFrame
    scores: pd.DataFrame
    features: pd.DataFrame
    rewrites: pd.DataFrame
    specs: tuple[FeatureSpec, ...]
    truth: dict[str, Any]

    def inputs(self) -> AnalysisInputs:
        """AnalysisInputs with RM roles pre = 'pre', post = 'post' and the length RM as the baseline."""
        return AnalysisInputs(
            pairs=self.pairs,
            scores=self.scores,
            post="post",
            pre="pre",
            features=self.features,
            specs=self.specs,
            rewrites=self.rewrites,
            baselines=tuple(sorted({str(r) for r in self.scores["rm"]} - {"pre", "post"})),
        )


def _draw(rng: np.random.Generator, f: PlantedFeature, p1: float | FloatArray, size: int) -> FloatArray:
    u = rng.random(size)
    if f.kind == "binary":
        return (u < p1).astype(np.float64)
    out = np.zeros(size)
    out[u < p1] = 1.0
    out[u > 1 - f.p_negative] = -1.0
    return out


def _features(
    rng: np.random.Generator, feats: tuple[PlantedFeature, ...], n: int, label_noise: float
) -> tuple[FloatArray, FloatArray, np.ndarray]:
    """(n, K) chosen and rejected feature matrices, after label-noise swaps; and the swap mask."""
    xc = np.column_stack([_draw(rng, f, f.p_chosen, n) for f in feats])
    xr = np.column_stack([_draw(rng, f, f.p_rejected, n) for f in feats])
    swap = rng.random(n) < label_noise
    xc[swap], xr[swap] = xr[swap].copy(), xc[swap].copy()
    return xc, xr, swap


def _truth_rates(spec: SimulationSpec, feats: tuple[PlantedFeature, ...]) -> dict[str, Any]:
    rng = np.random.default_rng([spec.seed, 7919])
    m = spec.truth_mc_pairs
    xc, xr, _ = _features(rng, feats, m, spec.label_noise)
    d = xc - xr
    s = np.sqrt(2 * spec.noise_sd**2 + spec.prompt_effect_sd**2)
    p1 = special.ndtr(d @ np.array([f.beta_post for f in feats]) / s)
    p0 = special.ndtr(d @ np.array([f.beta_pre for f in feats]) / s)
    names = [f.name for f in feats]
    gamma: dict[str, float] = {}
    if "is_harmless" in names and "is_helpful" in names:
        h, e = names.index("is_harmless"), names.index("is_helpful")
        rank_c = 2 * xc[:, h] + xc[:, e]
        rank_r = 2 * xr[:, h] + xr[:, e]
        gamma = {
            "c": float(np.mean(rank_c > rank_r)),
            "i": float(np.mean(rank_c == rank_r)),
            "r": float(np.mean(rank_c < rank_r)),
        }
    return {
        "agreement_post": float(p1.mean()),
        "agreement_pre": float(p0.mean()),
        "resistance": float(1 - p1.mean()),
        "regimes": {
            "stayed_aligned": float(np.mean(p0 * p1)),
            "got_aligned": float(np.mean((1 - p0) * p1)),
            "resisted_alignment": float(np.mean((1 - p0) * (1 - p1))),
            "reversed_alignment": float(np.mean(p0 * (1 - p1))),
        },
        "gamma_shares": gamma,
        "monte_carlo_pairs": m,
    }


def _grouped(
    spec: SimulationSpec, feats: tuple[PlantedFeature, ...], rng: np.random.Generator
) -> tuple[FloatArray, FloatArray, FloatArray, FloatArray, np.ndarray]:
    """Features and rewards of the pairs of a multi-variant layout (module docstring, prompt groups):
    per text, then every chosen × rejected combination of a prompt. Returns xc, xr, r1, r0 (per pair)
    and the prompt index of each pair."""
    mc, mr = spec.chosen_per_prompt, spec.rejected_per_prompt
    g = spec.n_pairs // (mc * mr)
    swap = rng.random(g) < spec.label_noise
    pc = np.array([[f.p_chosen, f.p_rejected] for f in feats])  # (K, 2)

    def texts(m: int, role: int) -> FloatArray:
        # a swapped prompt draws its chosen-role texts with the rejected prevalences and vice versa
        col = np.where(np.repeat(swap, m), 1 - role, role)
        return np.column_stack([_draw(rng, f, pc[j][col], g * m) for j, f in enumerate(feats)])

    xct, xrt = texts(mc, 0), texts(mr, 1)
    prompt_c, prompt_r = np.repeat(np.arange(g), mc), np.repeat(np.arange(g), mr)

    def rewards(alpha: float, beta: FloatArray) -> tuple[FloatArray, FloatArray]:
        shift = rng.normal(0, spec.pair_effect_sd, g)
        w = rng.normal(0, spec.prompt_effect_sd, g) if spec.prompt_effect_sd > 0 else np.zeros(g)
        rc = alpha + xct @ beta + shift[prompt_c] + w[prompt_c] / 2 + rng.normal(0, spec.noise_sd, g * mc)
        rr = alpha + xrt @ beta + shift[prompt_r] - w[prompt_r] / 2 + rng.normal(0, spec.noise_sd, g * mr)
        return rc, rr

    r1c, r1r = rewards(spec.alpha_post, np.array([f.beta_post for f in feats]))
    r0c, r0r = rewards(spec.alpha_pre, np.array([f.beta_pre for f in feats]))
    prompt = np.repeat(np.arange(g), mc * mr)
    a = np.tile(np.repeat(np.arange(mc), mr), g)
    b = np.tile(np.tile(np.arange(mr), mc), g)
    ci = prompt * mc + a
    ri = prompt * mr + b
    r1 = np.column_stack([r1c[ci], r1r[ri]])
    r0 = np.column_stack([r0c[ci], r0r[ri]])
    return xct[ci], xrt[ri], r1, r0, prompt


def simulate(spec: SimulationSpec) -> SimulatedData:
    """Generate one seeded dataset (pure: same spec → identical tables)."""
    feats = spec.planted()
    rng = np.random.default_rng(spec.seed)
    n, k = spec.n_pairs, len(feats)
    ids = np.array([f"sim{i:07d}" for i in range(n)], dtype=object)
    prompt: np.ndarray | None = None
    if spec.pairs_per_prompt > 1 or spec.prompt_effect_sd > 0:
        xc, xr, r1, r0, prompt = _grouped(spec, feats, rng)
    else:
        xc, xr, _swap = _features(rng, feats, n, spec.label_noise)
        b1 = np.array([f.beta_post for f in feats])
        b0 = np.array([f.beta_pre for f in feats])
        u1 = rng.normal(0, spec.pair_effect_sd, n)
        u0 = rng.normal(0, spec.pair_effect_sd, n)
        r1 = (
            np.column_stack([spec.alpha_post + xc @ b1, spec.alpha_post + xr @ b1])
            + u1[:, None]
            + rng.normal(0, spec.noise_sd, (n, 2))
        )
        r0 = (
            np.column_stack([spec.alpha_pre + xc @ b0, spec.alpha_pre + xr @ b0])
            + u0[:, None]
            + rng.normal(0, spec.noise_sd, (n, 2))
        )
    length = np.round(rng.lognormal(5.5, 0.6, (n, 2))) if spec.length_baseline else None

    # --- rewrites -------------------------------------------------------------------------------
    rw = rng.random(n) < spec.rewrite_fraction
    idx = np.flatnonzero(rw)
    m = idx.size
    xc_rw, xr_rw = xc[idx].copy(), xr[idx].copy()
    q = np.full(m, spec.flip_base)
    for j, f in enumerate(feats):
        if f.rewrite_change <= 0:
            continue
        for side, mat in ((0, xc_rw), (1, xr_rw)):
            orig = mat[:, j].copy()
            change = rng.random(m) < f.rewrite_change
            up = rng.random(m) < 0.5  # for middle ordinal levels: direction of the change
            if f.kind == "binary":
                new = np.where(change, 1 - orig, orig)
            else:
                step = np.where(orig == 1, -1.0, np.where(orig == -1, 1.0, np.where(up, 1.0, -1.0)))
                new = np.where(change, orig + step, orig)
            mat[:, j] = new
            delta = orig - new
            q += f.pi_plus[side] * (delta > 0) + f.pi_minus[side] * (delta < 0)
    aligned = r1[idx, 0] > r1[idx, 1]
    flip = np.where(aligned, rng.random(m) < q, rng.random(m) < spec.flip_back)
    r1_rw = r1[idx].copy()
    r1_rw[flip] = r1_rw[flip][:, ::-1]
    r0_rw = r0[idx].copy()
    status = np.where(rng.random((m, 2)) < spec.rewrite_fail_rate, "failed", "ok")
    drifted = (rng.random((m, 2)) < spec.drift_rate) & (status == "ok")
    similarity = np.where(
        status == "ok",
        np.where(drifted, rng.uniform(0.6, 0.8, (m, 2)), rng.uniform(0.9, 1.0, (m, 2))),
        np.nan,
    )
    scored = (status == "ok").all(axis=1)

    # --- long tables ----------------------------------------------------------------------------
    sides = np.array(["chosen", "rejected"], dtype=object)
    score_parts = []
    rm_arrays: list[tuple[str, FloatArray]] = [("post", r1), ("pre", r0)]
    if length is not None:
        rm_arrays.append(("length_chars", length))
    for rm, arr in rm_arrays:
        score_parts.append(
            pd.DataFrame(
                {
                    "pair_id": np.repeat(ids, 2),
                    "side": np.tile(sides, n),
                    "rm": rm,
                    "reward": arr.reshape(-1),
                    "variant": "original",
                }
            )
        )
    sid = ids[idx][scored]
    for rm, arr in (("post", r1_rw), ("pre", r0_rw)):
        score_parts.append(
            pd.DataFrame(
                {
                    "pair_id": np.repeat(sid, 2),
                    "side": np.tile(sides, sid.size),
                    "rm": rm,
                    "reward": arr[scored].reshape(-1),
                    "variant": spec.transform,
                }
            )
        )
    scores = pd.concat(score_parts, ignore_index=True)
    scores["truncated"] = False

    names = np.array([f.name for f in feats], dtype=object)

    def long(pids: np.ndarray, c: FloatArray, r: FloatArray, variant: str) -> pd.DataFrame:
        np_ = pids.size
        vals = np.stack([c, r], axis=1)  # (n, 2, K)
        return pd.DataFrame(
            {
                "pair_id": np.repeat(pids, 2 * k),
                "side": np.tile(np.repeat(sides, k), np_),
                "feature": np.tile(names, 2 * np_),
                "value": vals.reshape(-1),
                "variant": variant,
            }
        )

    features = pd.concat(
        [long(ids, xc, xr, "original"), long(sid, xc_rw[scored], xr_rw[scored], spec.transform)],
        ignore_index=True,
    )
    rewrites = pd.DataFrame(
        {
            "pair_id": np.repeat(ids[idx], 2),
            "side": np.tile(sides, m),
            "transform": spec.transform,
            "status": status.reshape(-1),
            "similarity": similarity.reshape(-1),
            "drifted": drifted.reshape(-1),
        }
    )
    pairs = pd.DataFrame({"pair_id": ids, "context_diverges": rng.random(n) < 0.002})
    if prompt is not None:
        pairs["group_id"] = np.char.add("prompt", prompt.astype(str)).astype(object)
    specs = tuple(
        FeatureSpec(
            name=f.name,
            kind=f.kind,
            role=f.role,
            levels=("negative", "neutral", "positive") if f.kind == "ordinal" else None,
            level_values=(-1.0, 0.0, 1.0) if f.kind == "ordinal" else None,
            source="simulation",
        )
        for f in feats
    )
    rates = _truth_rates(spec, feats)
    a1 = float(rates["agreement_post"])
    lpm: dict[str, float] = {}
    for f in feats:
        if f.rewrite_change <= 0:
            continue
        for side_i, side_name in enumerate(("chosen", "rejected")):
            lpm[f"{side_name}:{f.name}:D+"] = a1 * f.pi_plus[side_i]
            lpm[f"{side_name}:{f.name}:D-"] = a1 * f.pi_minus[side_i]
    truth: dict[str, Any] = {
        "spec": {k2: v for k2, v in dataclasses.asdict(spec).items() if k2 != "features"},
        "features": [dataclasses.asdict(f) for f in feats],
        "imprint": {
            "post": {f.name: f.beta_post for f in feats} | {"intercept": spec.alpha_post},
            "pre": {f.name: f.beta_pre for f in feats} | {"intercept": spec.alpha_pre},
            "post_minus_pre": {f.name: f.beta_post - f.beta_pre for f in feats}
            | {"intercept": spec.alpha_post - spec.alpha_pre},
        },
        **rates,
        "robustness_lpm": {"transform": spec.transform, "intercept": a1 * spec.flip_base, "terms": lpm},
    }
    return SimulatedData(
        pairs=pairs, scores=scores, features=features, rewrites=rewrites, specs=specs, truth=truth
    )
