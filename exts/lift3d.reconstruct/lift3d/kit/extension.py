"""The ``lift3d.reconstruct`` extension: lifecycle and the controller between Kit and the job queue.

On startup it registers the ``show_window`` action, the "Window > lift3d
Reconstruct" menu item, the ``Lift3dAddReconstruction`` command, an update
subscription that drains the job queue on the main loop, and a viewport drop
delegate for photographs. On shutdown it asks running jobs to stop (without
waiting for them: the worker ends at its next cancel check), removes every one of
those registrations again, closes the panel with its drop handlers, and lets go of
every object it held.

Viewport drops arrive one URL at a time (Kit's handler calls the delegate once per
dropped file), so the URLs are collected and become jobs on the next update tick:
two photos and a ``transforms.json`` dropped together make one multi-view job.

A photo showing several objects gives one asset per object (the ``objects``
setting, default ``all``); every one of them is added with its own command and
listed in the panel.

While the panel is open, the job's worker also draws each result's contact
sheet at thumbnail size (:func:`lift3d.preview.thumbnail_pixels`, the job
queue's follow-up): after the reconstruction, before the job reports done, so
the worker reads the new asset before any open stage holds its layers. The
pixels come with the job's ``DONE`` event and go to the panel on the update
tick that adds the asset to the stage. A preview that cannot be drawn is one
warning notification and no thumbnail; the asset and its prim are kept.

A job remembers the stage it was started for (its root layer identifier). If that
stage is no longer the open one when the job finishes (File > New, File > Open),
the asset is kept on disk and a notification says so; it is not added to the other
stage.

Threads: reconstructions run on the job queue's worker; everything here runs on
Kit's main loop (UI callbacks and the update event), which is the only place
USD and widgets are touched.
"""

from __future__ import annotations

from pathlib import Path

import carb
import omni.ext
import omni.kit.app
import omni.kit.commands
import omni.usd
from omni.kit.actions.core import get_action_registry

from ..api import ReconstructRequest, ReconstructResult
from ..errors import InputError
from ..jobs import Job, JobEvent, JobPlan, JobQueue, JobState, plan_jobs
from ..naming import free_name
from ..settings import load_settings
from .commands import Lift3dAddReconstructionCommand
from .drop import local_path
from .options import KitOptions, job_objects, job_settings, read_options
from .stage import output_dir_for, stage_identity
from .window import WINDOW_TITLE, Lift3dWindow, PanelCallbacks, PanelResult

SHOW_WINDOW_ACTION = "show_window"
MENU_NAME = "Window"
COMMAND_NAME = "Lift3dAddReconstruction"
IMAGE_TYPES = [("*.png, *.jpg, *.jpeg, *.webp", "Images"), ("transforms.json", "NeRF cameras")]

_instance: "Lift3dExtension | None" = None


def get_instance() -> "Lift3dExtension | None":
    """The running extension (``None`` when it is not enabled); for scripts and Kit-side tests."""
    return _instance


def notify(text: str, warning: bool = False) -> None:
    """Show ``text`` as a Kit notification (a log line when the notification manager is absent)."""
    try:
        import omni.kit.notification_manager as nm
    except ImportError:
        (carb.log_warn if warning else carb.log_info)(text)
        return
    nm.post_notification(text, hide_after_timeout=not warning,
                         status=nm.NotificationStatus.WARNING if warning else nm.NotificationStatus.INFO)


def error_text(message: str) -> str:
    """The line a user sees for an error: exactly what the CLI prints on stderr."""
    return f"lift3d: error: {message}"



def render_thumbnails(request: ReconstructRequest, result: ReconstructResult) -> list[tuple[str, object, str]]:
    """``(asset path, RGBA pixels or None, why not)`` for every result of a job (runs on the job's worker).

    One result's failure never stops the others, and never raises: it becomes its reason. An
    asset whose layer this process already holds (an open stage references an earlier asset of
    that path) is not read here: reading reloads held layers, which would recompose that stage
    off the main loop.
    """
    from pxr import Sdf

    from ..preview import thumbnail_pixels

    out: list[tuple[str, object, str]] = []
    for each in result.all_results():
        try:
            path = Path(each.asset_path)
            if any(Sdf.Layer.Find(str(p)) is not None for p in {path.absolute(), path.resolve()}):
                raise InputError(f"{each.asset_path} is already open in this session")
            out.append((str(each.asset_path), thumbnail_pixels(each.asset_path, photo=request.images[0]), ""))
        except InputError as exc:
            out.append((str(each.asset_path), None, str(exc)))
        except Exception as exc:  # a bug in the preview must not cost the user the asset
            carb.log_warn(f"lift3d: preview of {each.asset_path} failed: {type(exc).__name__}: {exc}")
            out.append((str(each.asset_path), None, f"{type(exc).__name__}: {exc}"))
    return out


def _warmup_done(loads, error) -> None:
    """Log the background kernel warmup's outcome (called on its thread)."""
    if error is not None:
        carb.log_warn(f"lift3d: kernel warmup failed ({error}); the first reconstruction compiles what it needs")
    else:
        carb.log_info(f"lift3d: {len(loads)} kernel modules ready")

class Lift3dExtension(omni.ext.IExt):
    """Kit entry point of lift3d (``[[python.module]] name = "lift3d.kit"``)."""

    def on_startup(self, ext_id: str) -> None:
        global _instance
        self._ext_name = omni.ext.get_extension_name(ext_id)
        self._options: KitOptions | None = read_options()
        self._window: Lift3dWindow | None = None
        self._pending_drops: dict[str, list[str]] | None = {}
        self._jobs: JobQueue | None = JobQueue(on_event=self._on_job_event, follow_up=self._job_thumbnails)
        omni.kit.commands.register(Lift3dAddReconstructionCommand)
        get_action_registry().register_action(
            self._ext_name, SHOW_WINDOW_ACTION, self.show_window, display_name="lift3d: Reconstruct window",
            description="Open the panel that turns photographs into 3D assets in the stage", tag="lift3d")
        self._menu = self._add_menu()
        self._update_sub = omni.kit.app.get_app().get_update_event_stream().create_subscription_to_pop(
            self._on_update, name="lift3d.reconstruct jobs")
        self._viewport_delegate = self._add_viewport_delegate()
        # Compile or load the Warp kernels now, on a daemon thread, never on the UI thread: the
        # first reconstruction then starts without a compiler pass.
        from ..warmup import warmup_in_background

        self._warmup = warmup_in_background(done=_warmup_done)
        _instance = self

    def on_shutdown(self) -> None:
        global _instance
        if _instance is self:
            _instance = None
        # Never block Kit's shutdown or an extension reload on a running reconstruction:
        # cancel, and let the worker thread finish on its own at its next cancel check.
        self._jobs.shutdown(cancel=True, wait=False)
        if self._viewport_delegate is not None:
            self._viewport_delegate.destroy()
            self._viewport_delegate = None
        if self._update_sub is not None:
            self._update_sub.unsubscribe()
            self._update_sub = None
        if self._menu:
            from omni.kit.menu.utils import remove_menu_items

            remove_menu_items(self._menu, MENU_NAME)
            self._menu = []
        get_action_registry().deregister_action(self._ext_name, SHOW_WINDOW_ACTION)
        omni.kit.commands.unregister(Lift3dAddReconstructionCommand)
        if self._window is not None:
            self._window.destroy()
        # Let go of everything: a disabled extension must not keep the queue, settings or panel alive.
        for name in list(vars(self)):
            setattr(self, name, None)

    # -- registration helpers (optional dependencies degrade gracefully) ------------------------------

    def _add_menu(self) -> list:
        try:
            from omni.kit.menu.utils import MenuItemDescription, add_menu_items
        except ImportError:
            return []
        menu = [MenuItemDescription(name=WINDOW_TITLE, onclick_action=(self._ext_name, SHOW_WINDOW_ACTION),
                                    ticked=True, ticked_fn=self._window_visible)]
        add_menu_items(menu, MENU_NAME)
        return menu

    def _add_viewport_delegate(self) -> object | None:
        try:
            from .viewport_drop import ImageDropDelegate
        except ImportError:  # no omni.kit.viewport.window: no viewport drops
            return None
        return ImageDropDelegate(self._on_viewport_url)

    def _window_visible(self) -> bool:
        return self._window is not None and self._window.visible

    def _on_window_visibility(self, visible: bool) -> None:
        """The panel was shown or hidden: update the tick of Window > lift3d Reconstruct."""
        if self._menu:
            from omni.kit.menu.utils import refresh_menu_items

            refresh_menu_items(MENU_NAME)

    # -- panel ------------------------------------------------------------------------------------

    @property
    def window(self) -> Lift3dWindow | None:
        return self._window

    @property
    def jobs(self) -> JobQueue:
        return self._jobs

    def show_window(self) -> Lift3dWindow:
        """Open (or bring back) the panel."""
        if self._window is None:
            try:
                defaults = load_settings(Path(self._options.config_file) if self._options.config_file else None)
            except InputError as exc:  # a broken user file: say so, offer the project's choices
                notify(error_text(str(exc)), warning=True)
                defaults = load_settings(None)
            callbacks = PanelCallbacks(reconstruct=self._on_reconstruct_clicked, cancel=self._on_cancel_clicked,
                                       pick_images=self._on_pick_images, dropped=self._on_panel_drop,
                                       visibility_changed=self._on_window_visibility)
            self._window = Lift3dWindow(callbacks, sorted(defaults.categories), list(defaults.presets),
                                        self._options.category, self._options.preset)
            self._on_window_visibility(True)
        self._window.visible = True
        return self._window

    def _selection(self) -> tuple[str, str]:
        if self._window is not None:
            return self._window.category, self._window.preset
        return self._options.category, self._options.preset

    def _on_pick_images(self) -> None:
        try:
            from omni.kit.window.file_importer import get_file_importer
        except ImportError:
            notify(error_text("the file importer is not available; drop the photos onto the panel instead"), True)
            return
        get_file_importer().show_window(title="lift3d: pick photographs", import_button_label="Add",
                                        file_extension_types=IMAGE_TYPES, import_handler=self._on_images_picked,
                                        allow_multi_files_selection=True)

    def _on_images_picked(self, filename: str, dirname: str, selections: list[str] | None = None) -> None:
        urls = list(selections or []) or [f"{dirname.rstrip('/')}/{filename}"]
        try:
            plans = plan_jobs(local_path(url) for url in urls)
        except InputError as exc:
            notify(error_text(str(exc)), warning=True)
            return
        self._show_plans(plans)

    def _show_plans(self, plans: list[JobPlan]) -> None:
        if self._window is not None:
            self._window.set_images([image for plan in plans for image in plan.images])
            self._window.set_views(plans[0].views)

    def _on_reconstruct_clicked(self) -> None:
        window = self._window
        if not window.images:
            notify(error_text("no image was given; add or drop photographs first"), warning=True)
            return
        self._submit_paths([*window.images, *([window.views] if window.views else [])], usd_context_name="")

    def _on_cancel_clicked(self) -> None:
        if self._jobs.cancel_all() and self._window is not None:
            self._window.show_idle("cancelling...")

    def _on_panel_drop(self, urls: list[str]) -> None:
        plans = self._submit_paths(urls, usd_context_name="")
        if plans:
            self._show_plans(plans)

    def _on_viewport_url(self, url: str, usd_context_name: str) -> None:
        """One URL of a viewport drop; the URLs of one drop become jobs together on the next update."""
        if self._pending_drops is not None:
            self._pending_drops.setdefault(usd_context_name, []).append(url)

    def _flush_viewport_drops(self) -> None:
        pending, self._pending_drops = self._pending_drops, {}
        for usd_context_name, urls in pending.items():
            self._submit_paths(list(dict.fromkeys(urls)), usd_context_name=usd_context_name)

    # -- jobs -------------------------------------------------------------------------------------

    def _submit_paths(self, urls: list[str] | list[Path], usd_context_name: str) -> list[JobPlan]:
        """Plan and queue the jobs for dropped/picked items; bad input becomes a notification."""
        category, preset = self._selection()
        try:
            plans = plan_jobs(local_path(str(url)) for url in urls)
            settings = job_settings(self._options, preset)
            objects = job_objects(self._options)
        except InputError as exc:
            notify(error_text(str(exc)), warning=True)
            return []
        context = omni.usd.get_context(usd_context_name)
        if context is None:  # Kit returns None for an unknown context name
            notify(error_text(f"there is no USD context named {usd_context_name!r}"), warning=True)
            return []
        stage = context.get_stage()
        out_dir = output_dir_for(stage, self._options.output_folder)
        for plan in plans:
            name = self._unique_asset_name(plan.images[0], out_dir)
            request = ReconstructRequest(images=plan.images, views=plan.views, category=category, preset=preset,
                                         name=name, out_dir=out_dir, config=None, objects=objects)
            self._jobs.submit(request, settings=settings,
                              context={"usd_context_name": usd_context_name, "stage": stage_identity(stage)})
        self._refresh_progress()
        return plans

    def _unique_asset_name(self, image: Path, out_dir: Path) -> str:
        """An asset name whose folder is free in ``out_dir`` and not claimed by a queued job."""
        queued = [job.request.name for job in self._jobs.active() if job.request.out_dir == out_dir]
        return free_name(image.stem, out_dir, queued)

    def _on_update(self, event: object) -> None:
        if self._pending_drops:
            self._flush_viewport_drops()
        self._jobs.drain()

    def _refresh_progress(self) -> None:
        if self._window is None:
            return
        active = self._jobs.active()
        running = next((job for job in active if job.state is JobState.RUNNING), None)
        if running is not None:
            self._window.show_progress(f"{running.request.name}: {running.stage}", running.fraction,
                                       len(active) - 1)
        elif active:
            self._window.show_progress("queued", 0.0, len(active))
        else:
            self._window.show_idle()

    def _on_job_event(self, job: Job, event: JobEvent) -> None:
        if event.state is JobState.DONE:
            self._add_to_stage(job)
            self._show_thumbnails(job)
        elif event.state is JobState.FAILED:
            notify(error_text(event.error or "reconstruction failed"), warning=True)
        elif event.state is JobState.CANCELLED:
            notify(f"lift3d: {job.request.name} cancelled")
        self._refresh_progress()

    def _add_to_stage(self, job: Job) -> None:
        """Add every result of a done job (one per object of its photo) to the stage it was started for."""
        results = job.result.all_results()
        context_name = job.context.get("usd_context_name", "")
        context = omni.usd.get_context(context_name)
        stage = context.get_stage() if context is not None else None
        written = ", ".join(f"{r.name} written to {r.asset_path}" for r in results)
        one = len(results) == 1
        if stage is None:
            notify(f"lift3d: {written} (no stage is open to add {'it' if one else 'them'} to)")
            return
        if stage_identity(stage) != job.context.get("stage", ""):
            notify(f"lift3d: {written}; not added, because the stage {'it was' if one else 'they were'} started "
                   "for is no longer open")
            return
        for result in results:
            self._add_result(job, result, context_name)

    def _add_result(self, job: Job, result: ReconstructResult, context_name: str) -> None:
        iou = result.metrics.get("input_view_iou")
        ok, prim_path = omni.kit.commands.execute(COMMAND_NAME, asset_path=str(result.asset_path),
                                                  prim_name=result.name, usd_context_name=context_name,
                                                  writer=self._options.writer, source=str(job.request.images[0]))
        if not ok:
            notify(error_text(f"could not add {result.asset_path} to the stage"), warning=True)
            return
        result.prim_path = prim_path
        if self._window is not None:
            self._window.add_result(PanelResult(result.name, prim_path, iou, asset_path=str(result.asset_path)))
        notify(f"lift3d: {result.name} added at {prim_path}"
               + (f" (input-view IoU {iou:.3f})" if iou is not None else "")
               + "".join(f"\nwarning: {text}" for text in result.warnings), warning=bool(result.warnings))

    # -- thumbnails -------------------------------------------------------------------------------

    def _job_thumbnails(self, request: ReconstructRequest, result: ReconstructResult) -> list | None:
        """The job queue's follow-up (on its worker): the results' thumbnails, when there is a panel to show them."""
        if self._window is None:  # no panel, no list to show them in: draw nothing
            return None
        return render_thumbnails(request, result)

    def _show_thumbnails(self, job: Job) -> None:
        """Hand a done job's thumbnails to the panel (main loop); a listed result whose preview failed gets a warning."""
        if self._window is None:
            return
        names = {str(r.asset_path): r.name for r in job.result.all_results()}
        if job.follow_up_error:
            listed = [r.name for r in self._window.results if r.asset_path in names]
            if listed:
                notify(f"lift3d: no preview of {', '.join(listed)}: {job.follow_up_error}", warning=True)
            return
        for asset_path, pixels, reason in job.follow_up or []:
            listed = any(r.asset_path == asset_path for r in self._window.results)
            if not listed:  # not added to the stage (or scrolled out of the list): nothing to show it beside
                continue
            if pixels is not None:
                try:
                    self._window.set_thumbnail(asset_path, pixels)
                    continue
                except Exception as exc:  # the asset is in the stage already; a thumbnail is not worth more
                    reason = f"{type(exc).__name__}: {exc}"
            notify(f"lift3d: no preview of {names.get(asset_path, asset_path)}: {reason}", warning=True)
