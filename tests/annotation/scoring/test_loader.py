"""The real EmpathicInsight-Face loader on tiny models saved in the authors' layout (no mocks)."""

from __future__ import annotations

import io
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image as PILImage

from annotation.scoring.backends import BatchPrefetcher, FixedResPreprocess, head_layers, load_scorer
from annotation.scoring.contracts import ImageSource, ModelDirError, head_filename
from annotation.scoring.modeldir import inspect_model_dir, read_neutral_means
from annotation.scoring.tiny import build_tiny_model
from annotation.taxonomy import EMOTIONS, N_EMOTIONS


def jpeg(i: int, size: tuple[int, int] = (80, 60)) -> bytes:
    rng = np.random.default_rng(i)
    buf = io.BytesIO()
    PILImage.fromarray(rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)).save(buf, format="JPEG")
    return buf.getvalue()


def reference_scores(root: Path, images: list[bytes]) -> np.ndarray:
    """What the model must give, computed independently of annotation.scoring.backends: the
    transformers model class of the checkpoint, its processor, and the heads as plain matmuls."""
    from transformers import AutoImageProcessor, AutoModel

    backbone_dir = root / "backbone"
    model = AutoModel.from_pretrained(str(backbone_dir), local_files_only=True).eval()
    processor = AutoImageProcessor.from_pretrained(str(backbone_dir), local_files_only=True)
    pil = [PILImage.open(io.BytesIO(b)).convert("RGB") for b in images]
    inputs = processor(images=pil, return_tensors="pt")
    with torch.no_grad():
        if hasattr(model, "get_image_features"):
            out = model.get_image_features(**inputs)
            emb = out if isinstance(out, torch.Tensor) else out.pooler_output
        else:
            emb = model(**inputs).pooler_output
    emb = emb / emb.norm(dim=-1, keepdim=True)
    cols = []
    for emotion in EMOTIONS:
        state = torch.load(root / head_filename(emotion), weights_only=True)
        weights = sorted((k for k in state if k.endswith("weight")), key=lambda k: int(k.split(".")[-2]))
        h = emb
        for i, wk in enumerate(weights):
            h = h @ state[wk].T + state[wk[:-len("weight")] + "bias"]
            if i < len(weights) - 1:
                h = torch.relu(h)
        cols.append(h[:, 0])
    return torch.stack(cols, dim=1).numpy()


@pytest.mark.parametrize(("kind", "head_keys"), [
    ("siglip2-vision", "layers"),
    ("siglip2-vision", "plain"),
    ("siglip2-full", "module"),
    ("siglip-vision", "plain"),
    ("siglip-full", "layers"),
])
def test_tiny_model_round_trips_through_the_real_loader(tmp_path, kind, head_keys):
    root = build_tiny_model(tmp_path / kind, kind=kind, head_keys=head_keys)
    model = load_scorer(root, device="cpu")
    assert model.device == "cpu" and len(model.heads) == N_EMOTIONS and model.embed_dim == 32
    assert model.version == inspect_model_dir(root).version and len(model.version) == 64
    images = [jpeg(i) for i in range(5)]
    scores = model.score_images(images)
    assert scores.shape == (5, N_EMOTIONS) and scores.dtype == np.float32
    np.testing.assert_allclose(scores, reference_scores(root, images), rtol=1e-4, atol=1e-4)
    # The streaming path (prefetch threads, batches of 2) gives the same numbers in input order.
    streamed = list(model.score_stream([ImageSource(10 + i, lambda b=b: b) for i, b in enumerate(images)],
                                       batch_size=2))
    assert [b.image_ids for b in streamed] == [[10, 11], [12, 13], [14]]
    np.testing.assert_allclose(np.array(sum((b.scores for b in streamed), [])), scores, rtol=1e-5, atol=1e-5)


def test_backbone_is_found_in_any_subfolder_and_heads_may_sit_beside_it(tmp_path):
    root = build_tiny_model(tmp_path / "m", kind="siglip-vision", backbone_subdir="hf/siglip2-so400m-patch16-384")
    layout = inspect_model_dir(root)
    assert layout.backbone_dir == (root / "hf/siglip2-so400m-patch16-384").resolve()
    assert layout.model_type == "siglip_vision_model"
    assert [p.name for p in layout.heads][:2] == [head_filename(EMOTIONS[0]), head_filename(EMOTIONS[1])]


def test_head_file_names_follow_the_authors_slugs(tiny_model_dir):
    names = {p.name for p in tiny_model_dir.iterdir()}
    assert "model_jealousy_&_envy_best.pth" in names
    assert "model_intoxication_altered_states_of_consciousness_best.pth" in names


def test_missing_head_file_is_named(tmp_path):
    root = build_tiny_model(tmp_path / "m", kind="siglip2-vision")
    (root / "model_jealousy_&_envy_best.pth").unlink()
    with pytest.raises(ModelDirError, match=r"missing head file\(s\).*model_jealousy_&_envy_best\.pth"):
        load_scorer(root)


def test_alias_head_file_is_accepted(tmp_path):
    root = build_tiny_model(tmp_path / "m", kind="siglip2-vision")
    (root / "model_helplessness_best.pth").rename(root / "model_hopelessness_best.pth")
    layout = inspect_model_dir(root)
    assert layout.heads[EMOTIONS.index("Helplessness")].name == "model_hopelessness_best.pth"


def test_no_backbone_and_ambiguous_backbones_are_refused(tmp_path):
    root = build_tiny_model(tmp_path / "m", kind="siglip2-vision")
    shutil.copytree(root / "backbone", root / "second")
    with pytest.raises(ModelDirError, match="more than one backbone"):
        inspect_model_dir(root)
    shutil.rmtree(root / "second")
    shutil.rmtree(root / "backbone")
    with pytest.raises(ModelDirError, match="no backbone"):
        inspect_model_dir(root)
    with pytest.raises(ModelDirError, match="does not exist"):
        inspect_model_dir(tmp_path / "nowhere")


def test_bad_heads_get_clear_errors(tmp_path):
    root = build_tiny_model(tmp_path / "m", kind="siglip2-vision")
    anger = root / head_filename("Anger")
    state = torch.load(anger, weights_only=True)
    torch.save({**state, "layers.0.running_mean": torch.zeros(3)}, anger)
    with pytest.raises(ModelDirError, match=r"model_anger_best\.pth: unexpected key 'layers\.0\.running_mean'"):
        load_scorer(root)
    # A head trained on another embedding size: the error names both sizes.
    torch.save({"0.weight": torch.zeros(4, 16), "0.bias": torch.zeros(4), "2.weight": torch.zeros(1, 4),
                "2.bias": torch.zeros(1)}, anger)
    with pytest.raises(ModelDirError, match="takes 16-dim embeddings but the backbone gives 32-dim"):
        load_scorer(root)
    anger.write_bytes(b"not a checkpoint")
    with pytest.raises(ModelDirError, match="cannot read head file"):
        load_scorer(root)


def test_head_layers_reads_sizes_and_order_from_the_weights():
    state = {"module.net.3.weight": torch.zeros(1, 8), "module.net.3.bias": torch.zeros(1),
             "module.net.0.weight": torch.zeros(8, 32), "module.net.0.bias": torch.zeros(8)}
    layers = head_layers(state, "h")
    assert [tuple(w.shape) for w, _ in layers] == [(8, 32), (1, 8)]
    with pytest.raises(ModelDirError, match="takes 9 inputs"):
        head_layers({"0.weight": torch.zeros(8, 32), "1.weight": torch.zeros(1, 9)}, "h")
    with pytest.raises(ModelDirError, match="expected 1"):
        head_layers({"0.weight": torch.zeros(2, 32)}, "h")
    with pytest.raises(ModelDirError, match="different prefixes"):
        head_layers({"a.0.weight": torch.zeros(8, 32), "b.1.weight": torch.zeros(1, 8)}, "h")


def test_version_is_the_checksum_of_the_files(tmp_path):
    root = build_tiny_model(tmp_path / "m", kind="siglip2-vision")
    v1 = inspect_model_dir(root).version
    copy = shutil.copytree(root, tmp_path / "copy")
    assert inspect_model_dir(copy).version == v1  # where the folder lies does not matter
    state = torch.load(root / head_filename("Anger"), weights_only=True)
    state["layers.0.bias"] = state["layers.0.bias"] + 1
    torch.save(state, root / head_filename("Anger"))
    assert inspect_model_dir(root).version != v1


def test_neutral_means_formats(tmp_path, tiny_model_dir):
    model = load_scorer(tiny_model_dir, device="cpu")
    assert model.neutral_means is not None and model.neutral_means[1] == pytest.approx(0.1)
    plain = tmp_path / "neutral_means.json"
    plain.write_text(json.dumps({name: float(i) for i, name in enumerate(EMOTIONS)}))
    assert read_neutral_means(plain)[EMOTIONS.index("Jealousy & Envy")] == EMOTIONS.index("Jealousy & Envy")
    plain.write_text(json.dumps({"Anger": 1.0}))
    with pytest.raises(ModelDirError, match="no neutral mean for"):
        read_neutral_means(plain)
    plain.write_text(json.dumps({"Angst": 1.0}))
    with pytest.raises(ModelDirError, match="unknown emotion key 'Angst'"):
        read_neutral_means(plain)


def test_fixed_resolution_preprocessing_matches_the_hf_processor():
    from transformers import SiglipImageProcessorPil

    hf = SiglipImageProcessorPil(size={"height": 64, "width": 64})
    pre = FixedResPreprocess(height=64, width=64, resample=int(hf.resample), rescale=float(hf.rescale_factor),
                             mean=tuple(hf.image_mean), std=tuple(hf.image_std))  # type: ignore[arg-type]
    images = [jpeg(i, (100, 90)) for i in range(3)]
    ours = pre.to_device(pre.collate([pre.one(b) for b in images], pin=False), torch.device("cpu"), torch.float32)
    theirs = hf(images=[PILImage.open(io.BytesIO(b)) for b in images], return_tensors="pt")["pixel_values"]
    np.testing.assert_allclose(ours["pixel_values"].numpy(), theirs.numpy(), atol=1e-5)
    assert ours["pixel_values"].is_contiguous(memory_format=torch.channels_last)


def test_prefetcher_keeps_order_and_reports_unreadable_images():
    pre = FixedResPreprocess(height=16, width=16, resample=3, rescale=1 / 255, mean=(0.5,) * 3, std=(0.5,) * 3)

    def broken() -> bytes:
        raise OSError("disk on fire")

    sources = [ImageSource(i, lambda i=i: jpeg(i)) for i in range(7)]
    sources[3] = ImageSource(3, lambda: b"not an image")
    sources[5] = ImageSource(5, broken)
    batches = list(BatchPrefetcher(sources, pre, batch_size=3, workers=3, depth=2))
    assert [b.image_ids for b in batches] == [[0, 1, 2], [4], [6]]
    assert set(batches[1].failed) == {3, 5} and "disk on fire" in batches[1].failed[5]
    assert batches[0].tensors is not None and tuple(batches[0].tensors["pixels_u8"].shape) == (3, 16, 16, 3)
