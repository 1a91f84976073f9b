"""fast-style: the Gradio app. UI wiring only; the logic lives in the ``fst.app_backend`` package.

    python app.py [--host 127.0.0.1] [--port 7860] [--models-dir models/] [--no-hub]

Host and port also come from ``GRADIO_SERVER_NAME`` / ``GRADIO_SERVER_PORT`` (as on HF
Spaces), the models folder from ``FST_MODELS_DIR``. Serving limits: see
``fst.app_backend.AppSettings``.

API (``gradio_client``); ``/stylize`` and ``/colorize`` return the path of a PNG file:

* ``/stylize``: ``image`` (file), ``style`` (a string: catalogue name such as ``starry_night`` or
  a Hub repo id such as ``user/vangogh``), ``strength`` (0..1), ``max_side`` (longer side
  of the output in px; larger photos are downscaled), ``preserve_colors`` (bool), ``style_scale``
  (brush size, 1..4: the network paints at the output size divided by it, so strokes grow),
  ``blend_with`` (a second style, ``""`` for none) and ``mix`` (0..1: its share; two styles of one
  multi-style network mix in one pass).
* ``/sheet``: ``image`` (file): the photo in every style on offer, as a labelled grid (PNG).
* ``/colorize``: ``image`` (file), ``recolor`` (bool: replace the colours of a colour
  photo), ``then_style`` (style to apply afterwards, ``""`` for none), ``strength`` (0..1).
* ``/video``: ``video`` (file), ``style`` (as for ``/stylize``, ``""`` for none), ``colorize``
  (bool), ``strength`` (0..1), ``max_side`` (longer side of the output in px),
  ``stability`` (flicker reduction, 0..0.95); returns the path of an H.264 MP4.
"""
from __future__ import annotations

import argparse
import functools
import logging
import os
import sys
from pathlib import Path
from typing import Any, Callable, Sequence

try:  # HF Spaces ZeroGPU: runs decorated functions on a GPU; a no-op elsewhere
    import spaces

    gpu = spaces.GPU
except ImportError:
    def gpu(fn: Callable) -> Callable:
        """Stand-in for ``spaces.GPU`` when the ``spaces`` package is absent."""
        return fn

import gradio as gr

from fst import gradio_temp
from fst.app_backend import (AppBackend, AppSettings, ModelRegistry, StyleOption, configure_torch,
                             user_message)
from fst.app_backend.memory import start_trimming
from fst.app_video import VideoService
from fst.hub import resolve_device
from fst.errors import FstError
from fst.paths import MODELS_DIR_ENV
from fst.settings import enable_huge_pages, limit_malloc_arenas

logger = logging.getLogger("fst.app")

ROOT = Path(__file__).resolve().parent
EXAMPLES = sorted(str(p) for p in (ROOT / "docs" / "examples").glob("*.jpg"))
NO_STYLE = ("(none)", "")

STYLIZE_DOC = ("Stylize a photo. Parameters: image (file), style (catalogue name such as 'starry_night', "
               "or a Hub repo id 'user/name'), strength (0..1), max_side (longer side of the output in px; "
               "larger photos are downscaled), preserve_colors (bool), style_scale (brush size 1..4: strokes grow "
               "with it), blend_with (a second style, '' for none), mix (0..1: the second style's share), "
               "style_image (optional file: any painting as the style, used instead of style). Returns a PNG.")
SHEET_DOC = "The photo in every style on offer, as a labelled grid. Parameters: image (file). Returns a PNG."
COLORIZE_DOC = ("Colorize a black-and-white photo at full resolution. Parameters: image (file), recolor "
                "(bool: replace the colours of a colour photo), then_style (style to apply afterwards, '' for "
                "none), strength (0..1, of that style). Returns a PNG.")
VIDEO_DOC = ("Stylize and/or colorize a video, without flicker. Parameters: video (file), style (as for /stylize, "
             "'' for none), colorize (bool: colorize first), strength (0..1), max_side (longer side of the output "
             "in px), stability (0..0.95: flicker reduction, 0 = frame by frame), style_scale (1..4: brush size). "
             "Returns an H.264 MP4 with the original audio.")


def style_dropdown(choices: Sequence[tuple[str, str]], **kwargs: Any) -> gr.Dropdown:
    """A style Dropdown that also takes typed Hub repo ids, and whose API type says so: a string,
    with the listed styles as examples (Gradio's own type would be an enum of the listed ones,
    which typed clients enforce). Set on the instance: a Dropdown subclass would make Gradio
    write a type-stub file next to this one."""
    dropdown = gr.Dropdown(choices, allow_custom_value=True, **kwargs)
    keys = [key for _, key in choices if key]
    info = {"type": "string", "examples": keys,
            "additional_description": f"a style such as {', '.join(map(repr, keys[:5]))}, or any Hub repo id "
                                      "'user/name' of a fast-style network"}
    dropdown.api_info = lambda: info  # type: ignore[method-assign]
    return dropdown


def user_errors(fn: Callable) -> Callable:
    """Show fst's messages as gr.Error; log anything unexpected and show a generic message."""
    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except gr.Error:
            raise
        except Exception as exc:  # noqa: BLE001 - never a raw traceback in the page
            if not isinstance(exc, FstError):
                logger.exception("request failed")
            raise gr.Error(user_message(exc), print_exception=False) from None
    return wrapper


def progress_callback(progress: gr.Progress) -> Callable[[float, str], None]:
    """Adapt gr.Progress to the backend's ``progress(fraction, text)``."""
    return lambda fraction, text: progress(fraction, desc=text)


def style_choices(options: Sequence[StyleOption]) -> list[tuple[str, str]]:
    """(label, key) pairs for the style dropdowns."""
    return [(option.label, option.key) for option in options]


def gallery_items(options: Sequence[StyleOption]) -> tuple[list, list[str]]:
    """Gallery thumbnails with captions, and the style key of each gallery position."""
    shown = [o for o in options if o.thumbnail is not None]
    return [(o.thumbnail, o.label) for o in shown], [o.key for o in shown]


def colorizer_notice(backend: AppBackend) -> str:
    """A warning while no colorizer is installed, else an empty string."""
    if backend.registry.colorizer_entry() is not None:
        return ""
    return ("**No trained colorizer is installed yet.** This tab will work once a colorizer "
            "(catalogue entry of kind `colorizer`) is published; the other tabs work now.")


def build_demo(backend: AppBackend) -> gr.Blocks:
    """The four tabs (image, webcam, colorize, video) wired to ``backend``."""
    registry, settings = backend.registry, backend.settings
    videos = VideoService(backend)
    options = registry.styles()
    choices = style_choices(options)
    default_style = choices[0][1] if choices else None
    thumbs, thumb_keys = gallery_items(options)
    gpu_device = backend.device.type == "cuda"
    arbitrary_ready = registry.arbitrary_entry() is not None

    # ------------------------------------------------------------------ handlers
    def shown(result):
        """The result image and the before/after pair; notes (e.g. "downscaled") as toasts."""
        for note in result.notes:
            gr.Info(note)
        return result.after, (result.before, result.after)

    @gpu
    @user_errors
    def stylize(image, style, strength, max_side, preserve_colors, style_scale, blend_with, mix, style_image=None,
                progress=gr.Progress()):
        return shown(backend.stylize(image, style, strength, max_side, preserve_colors, style_scale, blend_with, mix,
                                     style_image=style_image, progress=progress_callback(progress)))

    @gpu
    @user_errors
    def sheet(image, progress=gr.Progress()):
        grid, notes = backend.sheet(image, progress=progress_callback(progress))
        for note in notes:
            gr.Info(note)
        return grid

    @gpu
    @user_errors
    def colorize(image, recolor, then_style, strength, progress=gr.Progress()):
        return shown(backend.colorize(image, recolor, then_style or None, strength,
                                      progress=progress_callback(progress)))

    @gpu
    @user_errors
    def stylize_video(video, style, colorize, strength, max_side, stability, style_scale=1.0, progress=gr.Progress()):
        done = videos.run(video, style or "", bool(colorize), strength, max_side, stability, style_scale,
                          progress=progress_callback(progress))
        for note in done.notes:
            gr.Info(note)
        return str(done.path)

    @gpu
    @user_errors
    def webcam(frame, style, strength, resolution, blend, network, style_scale, blend_with, mix, painting, adapt,
               session):
        styled, session = backend.webcam_frame(frame, style, strength, resolution, blend, network, session,
                                               style_scale=style_scale, blend_with=blend_with, mix=mix,
                                               style_image=painting, adapt=adapt)
        return (gr.skip() if styled is None else styled), session.summary(), session

    @user_errors
    def show_model(style, progress=gr.Progress()):
        if not style:
            return ""
        registry.load_style(style, progress=progress_callback(progress))
        return registry.model_info(style)

    @user_errors
    def load_repo(repo_id, progress=gr.Progress()):
        repo_id = (repo_id or "").strip()
        registry.load_style(repo_id, progress=progress_callback(progress))
        gr.Info(f"Loaded {repo_id}")
        new_choices = style_choices(registry.styles())
        value = repo_id if repo_id in [key for _, key in new_choices] else next(   # a multi-style network:
            (key for _, key in new_choices if key.startswith(repo_id + ":")), repo_id)   # its first style
        optional = gr.update(choices=[NO_STYLE, *new_choices])
        return (gr.update(choices=new_choices, value=value), gr.update(choices=new_choices), optional, optional,
                optional)

    def refresh():
        registry.hub_done.wait(timeout=3)   # give Hub discovery a moment on the first page load
        current = registry.styles()
        items, keys = gallery_items(current)
        new_choices = style_choices(current)
        optional = gr.update(choices=[NO_STYLE, *new_choices])
        return (items, keys, gr.update(choices=new_choices), gr.update(choices=new_choices), optional, optional,
                optional, colorizer_notice(backend))

    def pick_style(keys: list[str], evt: gr.SelectData):
        index = evt.index if isinstance(evt.index, int) else -1
        return keys[index] if 0 <= index < len(keys) else gr.skip()

    # ------------------------------------------------------------------ layout
    gradio_temp.install()
    with gr.Blocks(title="fast-style: neural style transfer and colorization",
                   delete_cache=settings.delete_cache) as demo:
        gr.Markdown("# fast-style\nFeed-forward neural style transfer (Johnson et al. 2016) and automatic "
                    "colorization (Iizuka et al. 2016). Pick a painting, upload a photo, or turn on your webcam.")
        keys_state = gr.State(thumb_keys)
        with gr.Tab("Image", id="image"):
            with gr.Row():
                with gr.Column():
                    image_in = gr.Image(label="Photo", type="filepath", sources=["upload", "clipboard"],
                                        elem_id="image-input")
                    if EXAMPLES:
                        gr.Examples(EXAMPLES, inputs=image_in, label="Example photos")
                    strength = gr.Slider(0, 1, value=1.0, step=0.05, label="Strength",
                                         info="0 keeps the photo, 1 applies the full style")
                    max_side = gr.Slider(128, settings.max_side, value=min(1024, settings.max_side), step=64,
                                         label="Output size (longer side, px)",
                                         info="Larger photos are downscaled to this size; "
                                              "big outputs are processed in tiles.")
                    brush = gr.Slider(1, 4, value=2, step=0.25, label="Brush size", elem_id="brush-size",
                                      info="Larger strokes: the network paints at the output size divided by this "
                                           "(1 = its own stroke size, best for small outputs)")
                    preserve = gr.Checkbox(label="Preserve original colours", value=False)
                    with gr.Row():
                        blend_with = style_dropdown([NO_STYLE, *choices], value="", label="Mix with",
                                                    elem_id="blend-with")
                        mix = gr.Slider(0, 1, value=0, step=0.05, label="Mix", elem_id="mix",
                                        info="Share of the second style (two styles of one network mix in one pass)")
                    with gr.Row():
                        run = gr.Button("Stylize", variant="primary", elem_id="stylize-button")
                        sheet_run = gr.Button("All styles", elem_id="sheet-button")
                with gr.Column():
                    gallery = gr.Gallery(thumbs, label="Style: click a painting", columns=4, height=300,
                                         allow_preview=False, object_fit="cover", buttons=[],
                                         elem_id="style-gallery")
                    style = style_dropdown(choices, value=default_style, label="Style", elem_id="style-dropdown")
                    painting = gr.Image(label="…or your own painting as the style", type="filepath",
                                        sources=["upload", "clipboard"], height=160, elem_id="style-image",
                                        visible=arbitrary_ready)
                    with gr.Accordion("Load any style network from the Hub", open=False):
                        repo_box = gr.Textbox(label="Hub repo id", placeholder="user/vangogh", max_length=96)
                        load = gr.Button("Load from the Hub")
                    model_info = gr.Markdown(elem_id="model-info")
            with gr.Row():
                result = gr.Image(label="Result", format="png", interactive=False, elem_id="image-result",
                                  buttons=["download", "fullscreen"])
                compare = gr.ImageSlider(label="Before / after", interactive=False, format="png")
            pair = gr.State()
            sheet_out = gr.Image(label="All styles", format="png", interactive=False, elem_id="sheet-result",
                                 buttons=["download", "fullscreen"])

        with gr.Tab("Webcam", id="webcam"):
            gr.Markdown(f"Live style transfer of your camera. Each session streams for up to "
                        f"{settings.webcam_seconds} s (press record again to continue); at most "
                        f"{settings.webcam_sessions} streams run at once.")
            with gr.Row():
                cam = gr.Image(label="Camera", sources=["webcam"], streaming=True, type="numpy",
                               elem_id="webcam-input")
                cam_out = gr.Image(label="Styled", streaming=True, interactive=False, elem_id="webcam-output")
            with gr.Row():
                cam_style = gr.Dropdown(choices, value=default_style, label="Style", elem_id="webcam-style")
                cam_strength = gr.Slider(0, 1, value=1.0, step=0.05, label="Strength")
                cam_resolution = gr.Slider(128, 1024, value=1024 if gpu_device else 640, step=32,
                                           label="Processing resolution (longer side, px)",
                                           info="With 'adapt' on, the largest it may reach")
                cam_adapt = gr.Checkbox(value=True, label=f"Adapt to keep {settings.webcam_fps} fps",
                                        info="Lower the resolution when frames come too slowly, raise it when "
                                             "there is time", elem_id="webcam-adapt")
            with gr.Row():
                cam_network = gr.Radio(["auto", "webcam", "full"], value="auto", label="Network",
                                       info="auto: the style's webcam network on CPU, the full one on GPU")
                cam_blend = gr.Slider(0, 0.9, value=0.3, step=0.05, label="Temporal smoothing",
                                      info="Blend with the previous styled frame to reduce flicker (0 = off)")
                cam_brush = gr.Slider(1, 4, value=1, step=0.25, label="Brush size",
                                      info="Larger strokes, and faster: the network runs at 1/size")
            with gr.Row():
                cam_blend_with = gr.Dropdown([NO_STYLE, *choices], value="", label="Mix with",
                                             elem_id="webcam-blend-with")
                cam_mix = gr.Slider(0, 1, value=0, step=0.05, label="Mix", elem_id="webcam-mix",
                                    info="Share of the second style; styles of one multi-style network switch "
                                         "and mix without loading anything")
            cam_painting = gr.Image(label="…or your own painting as the style (lower resolution on CPU)",
                                    type="filepath", sources=["upload", "clipboard"], height=140,
                                    elem_id="webcam-style-image", visible=arbitrary_ready)
            cam_stats = gr.Markdown("Press record to start.", elem_id="webcam-stats")
            session = gr.State()

        with gr.Tab("Colorize", id="colorize"):
            notice = gr.Markdown(colorizer_notice(backend), elem_id="colorizer-notice")
            gr.Markdown(f"Upload a black-and-white or faded photo: it is colorized at full resolution "
                        f"(photos above {settings.colorize_max_pixels / 1e6:g} Mpx are downscaled first).")
            with gr.Row():
                with gr.Column():
                    col_in = gr.Image(label="Black-and-white photo", type="filepath",
                                      sources=["upload", "clipboard"], elem_id="colorize-input")
                    recolor = gr.Checkbox(label="Recolor a colour photo (replace its colours)", value=False)
                    then_style = style_dropdown([NO_STYLE, *choices], value="", label="Then stylize with")
                    col_strength = gr.Slider(0, 1, value=1.0, step=0.05, label="Style strength")
                    col_run = gr.Button("Colorize", variant="primary", elem_id="colorize-button")
                with gr.Column():
                    col_out = gr.Image(label="Colorized (full resolution)", format="png", interactive=False,
                                       elem_id="colorize-result", buttons=["download", "fullscreen"])
                    col_compare = gr.ImageSlider(label="Before / after", interactive=False, format="png")
            col_pair = gr.State()

        with gr.Tab("Video", id="video"):
            gr.Markdown("Stylize and/or colorize a video clip. Each frame is blended with the previous one "
                        "moved along the motion, so textures do not crawl; the audio is kept. "
                        + videos.describe_limits())
            with gr.Row():
                with gr.Column():
                    vid_in = gr.Video(label="Video", sources=["upload"], elem_id="video-input")
                    vid_style = style_dropdown([NO_STYLE, *choices], value=default_style or "", label="Style",
                                               elem_id="video-style")
                    vid_colorize = gr.Checkbox(label="Colorize first (black-and-white film)", value=False,
                                               elem_id="video-colorize")
                    vid_strength = gr.Slider(0, 1, value=1.0, step=0.05, label="Strength")
                    vid_max_side = gr.Slider(128, settings.max_side, value=videos.default_max_side, step=32,
                                             label="Output size (longer side, px)")
                    vid_stability = gr.Slider(0, 0.95, value=0.6, step=0.05, label="Flicker reduction",
                                              info="Weight of the previous frame, moved along the motion (0 = off)")
                    vid_brush = gr.Slider(1, 4, value=1, step=0.25, label="Brush size", elem_id="video-brush",
                                          info="Larger strokes, and faster: the network runs at 1/size")
                    vid_run = gr.Button("Process video", variant="primary", elem_id="video-button")
                with gr.Column():
                    vid_out = gr.Video(label="Result", interactive=False, elem_id="video-result")

        gr.Markdown(backend.footer(), elem_id="footer")

        # -------------------------------------------------------------- events
        # preprocess=False: uploads reach fst.imageio undecoded (Gradio would open them with PIL first).
        run.click(stylize, [image_in, style, strength, max_side, preserve, brush, blend_with, mix, painting],
                  [result, pair],
                  api_name="stylize", api_description=STYLIZE_DOC, preprocess=False, concurrency_id="compute",
                  concurrency_limit=settings.request_slots
                  ).success(lambda p: p, pair, compare, api_visibility="private", queue=False)
        col_run.click(colorize, [col_in, recolor, then_style, col_strength], [col_out, col_pair],
                      api_name="colorize", api_description=COLORIZE_DOC, preprocess=False,
                      concurrency_id="compute", concurrency_limit=settings.request_slots
                      ).success(lambda p: p, col_pair, col_compare, api_visibility="private", queue=False)
        vid_run.click(stylize_video, [vid_in, vid_style, vid_colorize, vid_strength, vid_max_side, vid_stability,
                                      vid_brush], vid_out,
                      api_name="video", api_description=VIDEO_DOC, preprocess=False, concurrency_id="compute",
                      concurrency_limit=settings.request_slots)
        sheet_run.click(sheet, image_in, sheet_out, api_name="sheet", api_description=SHEET_DOC, preprocess=False,
                        concurrency_id="compute", concurrency_limit=settings.request_slots)
        cam.stream(webcam, [cam, cam_style, cam_strength, cam_resolution, cam_blend, cam_network, cam_brush,
                            cam_blend_with, cam_mix, cam_painting, cam_adapt, session],
                   [cam_out, cam_stats, session], stream_every=0.05,
                   time_limit=settings.webcam_seconds, concurrency_limit=settings.webcam_sessions,
                   concurrency_id="webcam", preprocess=False, show_progress="hidden", api_visibility="private")
        gallery.select(pick_style, keys_state, style, api_visibility="private", queue=False)
        style.change(show_model, style, model_info, api_visibility="private")
        repo_outputs = [style, cam_style, then_style, blend_with, cam_blend_with]
        load.click(load_repo, repo_box, repo_outputs, api_visibility="private")
        repo_box.submit(load_repo, repo_box, repo_outputs, api_visibility="private")
        demo.load(refresh, None,
                  [gallery, keys_state, style, cam_style, then_style, blend_with, cam_blend_with, notice],
                  api_visibility="private", show_progress="hidden")
        if default_style:
            demo.load(show_model, style, model_info, api_visibility="private")
    return demo


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """Command-line options; defaults from the environment (GRADIO_SERVER_NAME/PORT, FST_MODELS_DIR)."""
    parser = argparse.ArgumentParser(description="fast-style Gradio app")
    parser.add_argument("--host", default=os.environ.get("GRADIO_SERVER_NAME", "127.0.0.1"),
                        help="interface to listen on (0.0.0.0 for all)")
    parser.add_argument("--port", type=int, default=int(os.environ.get("GRADIO_SERVER_PORT", "7860")))
    parser.add_argument("--models-dir", type=Path, default=None,
                        help=f"folder with catalog.json and the embedded networks (default: ${MODELS_DIR_ENV} "
                             "or models/)")
    parser.add_argument("--no-hub", action="store_true", help="do not list style networks found on the Hub")
    args = parser.parse_args(argv)
    if args.models_dir is not None and not args.models_dir.expanduser().is_dir():
        parser.error(f"--models-dir {args.models_dir} is not a folder")
    return args


def main(argv: Sequence[str] | None = None) -> None:
    """Build the backend, warm it up, and serve the app."""
    enable_huge_pages()   # before the first tensor: PyTorch reads the switch once
    limit_malloc_arenas()   # before the server's threads: each would get an arena, and RSS creeps up
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if args.models_dir is not None:
        os.environ[MODELS_DIR_ENV] = str(args.models_dir.expanduser().resolve())
    device = resolve_device(None)
    configure_torch(device)
    settings = AppSettings.from_env(device)
    backend = AppBackend(ModelRegistry(device, cache_size=settings.cache_size), settings)
    if not backend.registry.catalogue_styles():
        logger.warning("no embedded styles in %s (catalog.json missing or empty): only Hub networks are offered",
                       os.environ.get(MODELS_DIR_ENV) or "models/")
    if not args.no_hub:
        backend.registry.start_hub_discovery()
    else:
        backend.registry.hub_done.set()
    backend.warm_up()
    start_trimming()   # freed image buffers go back to the system: the resident memory stays flat under load
    demo = build_demo(backend)
    demo.queue(default_concurrency_limit=backend.settings.concurrency, max_size=backend.settings.queue_size)
    demo.launch(server_name=args.host, server_port=args.port, ssr_mode=False, show_error=False,
                max_file_size="50mb", footer_links=["api", "gradio"])


if __name__ == "__main__":
    sys.exit(main())
