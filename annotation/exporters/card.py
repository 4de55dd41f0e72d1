"""Release files: the dataset card (part of annotation.exporters; contracts in its docstring). PURE."""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from typing import Any

from annotation.consolidation import BinaryConsolidated
from annotation.taxonomy import EMOTIONS, TAXONOMY_VERSION, emotion_slug

from .records import CardInfo, Labels


def _size_category(n: int) -> str:
    for limit, name in ((1_000, "n<1K"), (10_000, "1K<n<10K"), (100_000, "10K<n<100K"),
                        (1_000_000, "100K<n<1M"), (10_000_000, "1M<n<10M")):
        if n < limit:
            return name
    return "10M<n<100M"


def _q(text: str) -> str:
    """A YAML scalar: JSON's double-quoted strings are valid YAML."""
    return json.dumps(text, ensure_ascii=False)


def _fmt(x: Any, digits: int = 3) -> str:
    if x is None or (isinstance(x, float) and not math.isfinite(x)):
        return "n/a"
    return f"{float(x):.{digits}f}"


def _md(text: Any) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


PROHIBITED_USES = (
    "Emotion recognition in the workplace or in education (hiring, performance or attention "
    "monitoring, grading, proctoring).",
    "Surveillance, biometric identification or tracking of people, and inferring emotions of "
    "people who have not consented to it.",
    "Decisions about people: access to employment, credit, insurance, housing, education, "
    "healthcare, public services, migration or law enforcement, or any automated decision with "
    "legal or similarly significant effect.",
    "Presenting model outputs trained on these labels as what a person actually feels: the "
    "labels describe how experts perceive expressions on synthetic faces.",
)


def render_card(
    *,
    card: CardInfo,
    labels: Labels,
    split_counts: Mapping[str, int],
    n_raw: int,
    n_raters: int,
    agreement: Mapping[str, Any],
    balance: Mapping[str, Any],
    emotions: Sequence[str] = EMOTIONS,
    scale_max: int | None = None,
    split_config: Mapping[str, Any] | None = None,
    test_split_note: str = "",
) -> str:
    """The dataset card (README.md) with the YAML header the Hugging Face hub reads.

    ``split_config`` (annotation.splits.SplitConfig.as_dict(), frozen in the release) and
    ``test_split_note`` (how the test split was drawn) describe the splits; without them the card
    says only that splits are stratified by the balance keys.

    ``agreement`` is a plain summary dict (keys optional except "emotions")::

        {"level": "interval", "confidence": 0.95, "n_boot": 1000, "mean_alpha": 0.19,
         "emotions": {"<emotion name>": {"alpha": 0.31, "ci_low": 0.25, "ci_high": 0.37,
                                         "n_units": 2400, "reason": None}, ...}}

    The card is its sections in order, each written by one function below.
    """
    binary = isinstance(labels, BinaryConsolidated)
    splits = [s for s in split_counts if split_counts[s] > 0]
    out: list[str] = ["\n".join(_yaml_header(card, splits, sum(split_counts.values()), n_raw)), "",
                      f"# {card.pretty_name}", ""]
    if card.description:
        out += [card.description, ""]
    out += _summary(card, labels, split_counts, splits, n_raw, n_raters, len(emotions),
                    "binary (yes/no per image and emotion)" if binary
                    else f"intensity (0..{scale_max if scale_max else '?'})")
    out += _how_to_load(splits, n_raw)
    out += _files_and_columns(binary, emotions)
    if not binary and getattr(labels, "p_present", None) is not None:
        out += _soft_labels_section(emotions, (agreement.get("measurement_model") or {}).get("source"))
    elif not binary and (agreement.get("measurement_model") or {}).get("converged") is False:
        out += ["## Soft labels", "", "Not included: the measurement model did not converge on these ratings, and a "
                "fit that did not converge is never released (docs/agreement.md, \"Measurement model\").", ""]
    out += ["## Consolidation", "", labels.describe() if isinstance(labels, BinaryConsolidated)
            else labels.rule.describe(), ""]
    out += _agreement_section(agreement, emotions)
    out += _balance_section(balance, split_config, test_split_note)
    out += _rater_pool_section(card.rater_pool)
    out += _license_and_uses(card)
    return "\n".join(out)


def _yaml_header(card: CardInfo, splits: Sequence[str], total: int, n_raw: int) -> list[str]:
    """The YAML front matter: licence, tags, size and the parquet configs the hub loads."""
    y = ["---", f"license: {card.license}", f"pretty_name: {_q(card.pretty_name)}", "task_categories:",
         "- image-classification", "tags:"]
    y += [f"- {t}" for t in ("emotion", "facial-expression", "emonet-face", "expert-annotation", "benchmark",
                             "synthetic-faces")]
    y += ["size_categories:", f"- {_q(_size_category(total))}", "configs:", "- config_name: default",
          "  default: true", "  data_files:"]
    for s in splits:
        y += [f"  - split: {s}", f"    path: {_q(f'data/{s}-*.parquet')}"]
    if n_raw:
        y += ["- config_name: raw_ratings", "  data_files:", "  - split: ratings",
              f"    path: {_q('raw/ratings.parquet')}"]
    y.append("---")
    return y


def _summary(card: CardInfo, labels: Labels, split_counts: Mapping[str, int], splits: Sequence[str], n_raw: int,
             n_raters: int, n_emotions: int, mode: str) -> list[str]:
    out = ["## Summary", "", "| | |", "|---|---|", f"| Version | {_md(card.version)} |",
           f"| Released | {_md(card.released)} |", f"| Taxonomy | {TAXONOMY_VERSION} ({n_emotions} emotions) |",
           f"| Mode | {mode} |"]
    out += [f"| Images ({s}) | {split_counts[s]} |" for s in splits]
    out += [f"| Raw ratings | {n_raw} |", f"| Rater pool (experts with at least one rating) | {n_raters} |"]
    out += [f"| Left out ({reason.replace('_', ' ')}) | {n} |" for reason, n in labels.left_out.items()]
    if card.homepage:
        out.append(f"| Homepage | {_md(card.homepage)} |")
    if card.contact:
        out.append(f"| Contact | {_md(card.contact)} |")
    out.append("")
    return out


def _how_to_load(splits: Sequence[str], n_raw: int) -> list[str]:
    out = ["## How to load", "", "```python",
           'import datasets; ds = datasets.load_dataset("parquet", data_dir="PATH/TO/THIS/FOLDER")',
           "```", "", "```python",
           f'import pandas; df = pandas.read_parquet("PATH/TO/THIS/FOLDER/data/{splits[0] if splits else "train"}'
           '-00000-of-00001.parquet")', "```", ""]
    if n_raw:
        out += ['Raw ratings: `pandas.read_parquet("PATH/TO/THIS/FOLDER/raw/ratings.parquet")` or '
                '`datasets.load_dataset("PATH/TO/THIS/FOLDER", "raw_ratings")`.', ""]
    return out


def _files_and_columns(binary: bool, emotions: Sequence[str]) -> list[str]:
    out = ["## Files and columns", "",
           "- `data/<split>-00000-of-00001.parquet`, `csv/<split>.csv`, `jsonl/<split>.jsonl`: one row per image.",
           "- `raw/ratings.parquet`: one row per rating, raters as pseudonyms (`rater_` + 10 hex digits of a "
           "keyed hash; never names or e-mail addresses).",
           "- `release.json`: frozen release configuration, counts, agreement and balance tables.",
           "- `manifest.json`: sha256 and size of every file.", "",
           "Per-image columns: `file_name`, `sha256`, `ethnicity`, `gender`, `age`, `prompt`, `split`, then "]
    if binary:
        out[-1] += ("per emotion `<slug>__label` (1 yes, 0 no, empty = not asked or undecided), `<slug>__yes` and "
                    "`<slug>__no` (raw vote counts).")
    else:
        out[-1] += ("`n_ratings`, `disputed`, and per emotion `<slug>__consensus`, `<slug>__spread` "
                    "(max - min of the ratings) and `<slug>__disputed`. Every rating covers all emotions "
                    "(untouched = 0), so `n_ratings` is also the number of ratings per emotion.")
    out += ["", "Emotion slugs: " + ", ".join(f"`{emotion_slug(e)}`" for e in emotions) + ".", ""]
    return out


def _soft_labels_section(emotions: Sequence[str], source: str | None = None) -> list[str]:
    """What the measurement model's columns mean and how to use them, and where the model's
    parameters came from (#18; docs/agreement.md)."""
    example = emotion_slug(emotions[0]) if emotions else "amusement"
    return ["## Soft labels", "",
            "Beside the consensus, every image has three columns per emotion from a measurement model of "
            "the ratings (a hurdle model: whether an expert marks the emotion present, and how strongly "
            "when present, with each expert's own presence threshold, intensity shift and noise estimated "
            "from all their ratings and removed). They describe a typical expert of this panel:",
            "",
            f"- `<slug>__p_present` (e.g. `{example}__p_present`): the probability that a typical expert "
            "marks the emotion present on this image (0..1).",
            f"- `<slug>__expected_intensity` (e.g. `{example}__expected_intensity`): the intensity such an "
            "expert gives when they mark it present (1..scale maximum).",
            f"- `<slug>__sd` (e.g. `{example}__sd`): the uncertainty of the label: the posterior standard "
            "deviation of the expected rating `p_present x expected_intensity`, in scale steps. It shrinks "
            "with more ratings and grows where the experts disagree.",
            "",
            "How to use them: `p_present x expected_intensity` is the expected rating (0..scale maximum) and "
            "a better-calibrated training target than the median of a few ratings; `p_present` can serve as "
            "a soft target for presence; weight evaluation examples by `1 / (sd^2 + noise)` or report "
            "results on images with small `sd` beside all images. Soft labels come from a model: its "
            "assumptions (docs/agreement.md, \"Measurement model\", in the emorate source) hold on "
            "average, not for every image; the raw ratings are included to check them.",
            "", *([f"Source of the model: {source}.", ""] if source else [])]


def _agreement_section(agreement: Mapping[str, Any], emotions: Sequence[str]) -> list[str]:
    """Krippendorff's alpha per emotion with its interval, from the release's agreement summary."""
    out = ["## Inter-annotator agreement", ""]
    level = agreement.get("level", "interval")
    conf = agreement.get("confidence", 0.95)
    n_boot = agreement.get("n_boot")
    out.append(f"Krippendorff's alpha ({level}) per emotion with {_fmt(float(conf) * 100, 0)}% bootstrap "
               f"intervals" + (f" ({n_boot} resamples over images)." if n_boot else ".")
               + (f" Mean alpha over emotions: {_fmt(agreement.get('mean_alpha'))}."
                  if agreement.get("mean_alpha") is not None else ""))
    out += _agreement_context(agreement)
    per: Mapping[str, Mapping[str, Any]] = agreement.get("emotions", {})
    side = any("alpha_all_ratings" in per.get(e, {}) for e in emotions)
    if side:  # #17: alpha on the released selection beside alpha on every rating of the frozen inputs
        out += ["", "| Emotion | alpha (released selection) | interval | alpha (all ratings) | images |",
                "|---|---:|---|---:|---:|"]
    else:
        out += ["", "| Emotion | alpha | interval | images |", "|---|---:|---|---:|"]
    for e in emotions:
        a = per.get(e, {})
        ci = f"[{_fmt(a.get('ci_low'))}, {_fmt(a.get('ci_high'))}]" if a.get("ci_low") is not None else "n/a"
        n_units = a.get("n_units")
        images = n_units if n_units is not None else "n/a"
        if side:
            out.append(f"| {_md(e)} | {_fmt(a.get('alpha'))} | {ci} | {_fmt(a.get('alpha_all_ratings'))} | {images} |")
        else:
            out.append(f"| {_md(e)} | {_fmt(a.get('alpha'))} | {ci} | {images} |")
    out.append("")
    return out


def _agreement_context(agreement: Mapping[str, Any]) -> list[str]:
    """The mean alpha for experts like these, beside the figure on all ratings, and the label's
    reliability (docs/agreement.md); nothing for summaries written before these existed."""
    out: list[str] = []
    ci = agreement.get("mean_alpha_ci_raters")
    if ci:
        out.append(f"Its {_fmt(float(agreement.get('confidence', 0.95)) * 100, 0)}% interval for experts like "
                   f"these (images and raters resampled): [{_fmt(ci[0])}, {_fmt(ci[1])}].")
    if agreement.get("mean_alpha_all_ratings") is not None:
        out.append(f"On all ratings, before this release's selection (excluded raters, dropped disputed images): "
                   f"{_fmt(agreement['mean_alpha_all_ratings'])}.")
    label = agreement.get("label_reliability")
    if label:
        out.append(f"Reliability of the consolidated label ({_fmt(label['ratings_per_image'], 1)} ratings per image, "
                   f"Spearman-Brown): {_fmt(label['reliability'])}.")
    return ["", " ".join(out)] if out else []


def _balance_section(balance: Mapping[str, Any], split_config: Mapping[str, Any] | None = None,
                     test_split_note: str = "") -> list[str]:
    """How the splits were drawn, then counts and shares per demographic value (and per emotion
    present) and split (annotation.splits.balance_table's tables)."""
    cfg = split_config or {}
    strata = " x ".join("age bucket" if k == "age" else str(k) for k in cfg.get("strata", ["ethnicity", "gender", "age"]))
    how = [f"Splits are stratified by {_md(strata)}"]
    if cfg.get("presence"):
        how[0] += " and by which emotions each image's label marks present (consensus above 0; binary: label 1)"
    how[0] += "."
    if cfg.get("group_key"):
        how.append(f"Images sharing a `{_md(cfg['group_key'])}` are always in the same split, so near-duplicate "
                   "faces never straddle train and test.")
    elif split_config is not None:
        how.append("Images are split one by one (no grouping).")
    if cfg.get("min_stratum"):
        how.append(f"A value with {int(cfg['min_stratum'])} or more images that is missing from a split expected to "
                   "hold 5 or more of them fails the release.")
    if test_split_note:
        how.append(test_split_note)
    out = ["## Splits", "", " ".join(how), "", "## Demographic balance per split", "",
           "Counts and shares (of the split) per value"
           + (" and, under \"emotion present\", per emotion the images whose label marks it present." if
              "emotion present" in balance.get("keys", {}) else "."), ""]
    bsplits = list(balance.get("splits", {}))
    for key, rows in balance.get("keys", {}).items():
        out += [f"### {key}", "", "| value | all | " + " | ".join(bsplits) + " |",
                "|---|---:|" + "---:|" * len(bsplits)]
        for row in rows:
            cells = [f"{row['all']['n']} ({float(row['all']['share']):.1%})"]
            cells += [f"{row['by_split'][s]['n']} ({float(row['by_split'][s]['share']):.1%})" for s in bsplits]
            out.append(f"| {_md(row['value'])} | " + " | ".join(cells) + " |")
        out.append("")
    return out


def _rater_pool_section(pool: Mapping[str, Any] | None) -> list[str]:
    """Who the raters are, in aggregate, from the backgrounds they chose to give (never per person)."""
    if not pool:
        return []
    out = ["## The raters", "",
           f"{pool['n_raters']} raters gave the ratings this release was built from; "
           f"{pool['n_described']} of them described their background (optional, with consent). "
           f"Counts per answer; answers given by fewer than {pool['min_group']} raters are counted under "
           "\"other or not given\".", ""]
    for field, rows in pool.get("fields", []):
        out += [f"### {_md(field)}", "", "| answer | raters |", "|---|---:|"]
        out += [f"| {_md(value)} | {int(n)} |" for value, n in rows]
        out.append("")
    return out


def _license_and_uses(card: CardInfo) -> list[str]:
    """Licence, intended and prohibited uses, limitations, citation: the same for every release."""
    out = ["## License", "",
           f"The data of this release is licensed {card.license.upper()} "
           "(https://creativecommons.org/licenses/by/4.0/). The emotion taxonomy is the EmoNet-Face "
           "taxonomy (CC BY 4.0) by its authors; please credit them and this release.", "",
           "## Intended uses", "",
           "- Benchmarking and training models of *perceived* facial emotion expression, measured against "
           "the consensus of psychology experts, and studying expert agreement.",
           "- Research on annotation methods, inter-rater reliability and dataset bias.", "",
           "## Prohibited uses", "",
           "The following uses are not permitted:", ""]
    out += [f"- {p}" for p in PROHIBITED_USES]
    out += ["", "## Limitations", "",
            "The faces are AI-generated; demographic labels come from the generation prompts, not from "
            "self-identification. Experts often disagree (low alpha for several emotions): use the spread, "
            "the disputed flags and the raw ratings, not only the consensus.", ""]
    if card.citation:
        out += ["## Citation", "", "```", card.citation, "```", ""]
    return out
