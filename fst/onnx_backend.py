"""ONNX export of a style network and an ONNX Runtime CPU backend with FastStyle's API.

    >>> from fst.onnx_backend import export_onnx, OnnxStylizer
    >>> export_onnx(FastStyle.from_pretrained("models/starry_night"), "starry.onnx")
    >>> OnnxStylizer("starry.onnx").stylize(Image.open("photo.jpg"))

The exported graph takes 1x3xHxW RGB in [0, 1] with H and W multiples of the
network's total stride (``fst.total_stride`` in the model metadata) and at least
twice that; :class:`OnnxStylizer` pads and crops exactly as ``TransformerNet.forward``
does, so its outputs equal the PyTorch path within float rounding
(tests/test_optimizations.py). Tiling is a PyTorch feature: an OnnxStylizer built
from a model delegates tiled calls to it.
"""
from __future__ import annotations

import hashlib
import json
import os
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .errors import FstError
from .fastpath import FastPath, fast_inference
from .inference import check_finite_output, pad_to_min_side
from .mixing import unbind
from .multistyle import describe_blend, style_mix
from .transformer import TransformerNet, pad_reflect_or_replicate

OPSET = 17
#: Opsets the export supports: Resize (the upsampling) needs 11; torch's TorchScript exporter stops at 20.
MIN_OPSET, MAX_OPSET = 11, 20
#: The graph is exported with the exact sub-pixel rewrite of the upsampling layers
#: (fewer MACs); NNPACK and in-place ops are PyTorch-only.
EXPORT_PATH = FastPath(subpixel_upsampling=True, winograd=False, inplace=False, fused_norm=False)


def _network(model: Any) -> TransformerNet:
    net = getattr(model, "net", model)   # a FastStyle, or a BoundStyle (its network's)
    net = getattr(net, "_orig_mod", net)  # torch.compile wrapper
    if not isinstance(net, TransformerNet):
        raise FstError(f"expected a FastStyle or TransformerNet, got {type(model).__name__}")
    return net


def export_onnx(model: Any, path: str | Path, *, opset: int = OPSET, example_size: tuple[int, int] = (256, 256),
                subpixel: bool = True, quiet: bool = True) -> Path:
    """Export a FastStyle / TransformerNet to ``path`` (dynamic height and width); returns the path.

    A multi-style network is exported with one style or blend fixed: the one chosen with
    ``model.with_style(...)``, else its first style.

    ``quiet`` silences the exporter's warnings: they flag the network's size-dependent padding,
    which :class:`OnnxStylizer` makes a no-op by padding its inputs to the network's stride.
    Nothing is left behind on failure (the file is written under a temporary name first).
    """
    with warnings.catch_warnings():
        if quiet:
            warnings.simplefilter("ignore")
        return _export_onnx(model, Path(path), opset, example_size, subpixel)


def _export_onnx(model: Any, path: Path, opset: int, example_size: tuple[int, int], subpixel: bool) -> Path:
    import onnx

    net = _network(model)
    path.parent.mkdir(parents=True, exist_ok=True)
    stride = net.total_stride
    height, width = (max(2 * stride, s + (-s) % stride) for s in example_size)
    example = torch.rand(1, 3, height, width)
    options = EXPORT_PATH if subpixel else None
    was_training = net.training
    net.eval()
    tmp = path.with_name(path.name + ".tmp")
    weights = _style_weights(model)
    try:
        with torch.no_grad(), fast_inference(options), style_mix(weights):
            torch.onnx.export(net.float().cpu(), (example,), str(tmp), input_names=["image"], output_names=["styled"],
                              dynamic_axes={"image": {2: "height", 3: "width"}, "styled": {2: "height", 3: "width"}},
                              opset_version=opset, dynamo=False)
        proto = onnx.load(str(tmp))
        meta = {"fst.total_stride": str(stride), "fst.config": json.dumps(net.config.to_dict()),
                "fst.subpixel_upsampling": str(bool(subpixel))}
        if weights is not None:
            meta["fst.style"] = describe_blend(net.config.style_names, weights)
        for key, value in meta.items():
            entry = proto.metadata_props.add()
            entry.key, entry.value = key, value
        onnx.checker.check_model(proto)
        onnx.save(proto, str(tmp))
        os.replace(tmp, path)
    finally:
        net.train(was_training)
        tmp.unlink(missing_ok=True)
    return path


def weights_digest(model: Any) -> str:
    """A short hash of the network's config and weights (names the cached export)."""
    net = _network(model)
    digest = hashlib.sha256(json.dumps(net.config.to_dict(), sort_keys=True).encode())
    for name, tensor in sorted(net.state_dict().items()):
        digest.update(name.encode())
        digest.update(tensor.detach().float().cpu().contiguous().numpy().tobytes())
    weights = _style_weights(model)
    if weights is not None:
        digest.update(b"style" + weights.numpy().tobytes())
    return digest.hexdigest()[:16]


def _style_weights(model: Any) -> torch.Tensor | None:
    """The style weights a multi-style model is exported with (None for a single-style network)."""
    network, style = unbind(model)
    return network.style_weights(style) if hasattr(network, "style_weights") else None


def session_options(threads: int | None = None, spin: bool = False):
    """ORT session options: ``threads`` intra-op threads (None: ORT's default), and no
    busy-waiting between runs by default, so a web server thread keeps its core."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.inter_op_num_threads = 1
    if threads:
        options.intra_op_num_threads = int(threads)
    options.add_session_config_entry("session.intra_op.allow_spinning", "1" if spin else "0")
    options.log_severity_level = 3
    return options


class OnnxStylizer:
    """A style network run by ONNX Runtime on the CPU, with ``FastStyle.stylize`` semantics.

    Build it from an exported file (``OnnxStylizer("x.onnx")``) or from a model
    (``OnnxStylizer.from_model(model)``: exported once into the cache, keyed by a hash
    of the weights; tiled calls are delegated to the model).
    """

    def __init__(self, path: str | Path, *, threads: int | None = None, spin: bool = False,
                 model: Any | None = None):
        import onnxruntime as ort

        self.path = Path(path)
        self.session = ort.InferenceSession(str(self.path), session_options(threads, spin),
                                            providers=["CPUExecutionProvider"])
        meta = self.session.get_modelmeta().custom_metadata_map
        self.total_stride = int(meta.get("fst.total_stride", 4))
        self.config = json.loads(meta["fst.config"]) if "fst.config" in meta else {}
        self.model = model

    @classmethod
    def from_model(cls, model: Any, *, cache: str | Path | None = None, threads: int | None = None,
                   spin: bool = False) -> "OnnxStylizer":
        """Export ``model`` (once; cached by weights hash) and open it."""
        from .paths import cache_dir

        folder = Path(cache) if cache else cache_dir() / "onnx"
        path = folder / f"transformer-{weights_digest(model)}-opset{OPSET}.onnx"
        if not path.is_file():
            export_onnx(model, path)
        return cls(path, threads=threads, spin=spin, model=model)

    def run(self, x: torch.Tensor) -> torch.Tensor:
        """The network on x (1x3xHxW float32 in [0, 1], any size >= 1x1) -> 1x3xHxW in [0, 1]."""
        from .faststyle import MIN_SIDE

        padded, (height, width) = pad_to_min_side(x, MIN_SIDE)
        stride = self.total_stride
        pad_h = max((-padded.shape[2]) % stride, 2 * stride - padded.shape[2])
        pad_w = max((-padded.shape[3]) % stride, 2 * stride - padded.shape[3])
        if pad_h or pad_w:
            padded = pad_reflect_or_replicate(padded, pad_w, pad_h)
        feed = np.ascontiguousarray(padded.detach().float().cpu().numpy())
        out = self.session.run(None, {"image": feed})[0]
        return check_finite_output(torch.from_numpy(out)[..., :height, :width])

    def __call__(self, image: Any, **kwargs: Any) -> Any:
        """Same as :meth:`stylize`."""
        return self.stylize(image, **kwargs)

    def stylize(self, image: Any, strength: float = 1.0, preserve_color: bool = False,
                max_side: int | None = None, tile: int | None = None) -> Any:
        """Stylize one image; returns the same kind (PIL, HxWx3 uint8 array, or tensor).

        Arguments as :meth:`fst.FastStyle.stylize`. Tiled calls (``tile``, or images above
        the auto-tiling size) go to the PyTorch model this stylizer was built from.
        """
        from .faststyle import StyleRequest, finish_styled

        request = StyleRequest.prepare(image, strength, preserve_color, max_side, tile)
        source, content = request.source, request.content
        if request.strength == 0.0:
            return source.restore(content)
        if request.tiled:
            if self.model is None:
                raise FstError("tiled stylization needs the PyTorch model: use OnnxStylizer.from_model(model)")
            return self.model.stylize(image, strength=strength, preserve_color=preserve_color,
                                      max_side=max_side, tile=request.tile)
        styled = self.run(content)
        return source.restore(finish_styled(content, styled, request.strength, preserve_color))
