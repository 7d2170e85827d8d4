"""Named pretrained models: where to download them, how to verify them, where they are cached.

Downloads go to the cache folder ($ESRGAN_CACHE, else $XDG_CACHE_HOME/esrgan, else ~/.cache/esrgan), are
written under a temporary name while their SHA-256 is computed, checked against the expected digest and size
where those are known, and only then renamed into place.
"""

from __future__ import annotations

import hashlib
import http.client
import os
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from esrgan._fs import atomic_writer
from esrgan.errors import DownloadError

_CHUNK = 1 << 20


@dataclass(frozen=True)
class ZooEntry:
    name: str
    url: str
    filename: str
    description: str
    sha256: str | None = None  # None where no published digest is known (the file is then checked by loading)
    size: int | None = None  # bytes, where known


def _gdrive(file_id: str) -> str:
    return f"https://drive.google.com/uc?export=download&id={file_id}"


MODEL_ZOO: dict[str, ZooEntry] = {
    e.name: e
    for e in (
        ZooEntry(
            "RRDB_ESRGAN_x4",
            _gdrive("1TPrz5QKd8DHHt1k8SRtm6tMiPjz_Qene"),
            "RRDB_ESRGAN_x4.pth",
            "ESRGAN, the paper's final GAN model (×4, DIV2K+Flickr2K+OST); official release, "
            "ESRGAN-repo keys",
        ),
        ZooEntry(
            "RRDB_PSNR_x4",
            _gdrive("1pJ_T-V1dpb1ewoEra1TGSWl5e6H7M4NN"),
            "RRDB_PSNR_x4.pth",
            "ESRGAN's PSNR-oriented RRDBNet (×4, DIV2K+Flickr2K); official release, ESRGAN-repo keys",
        ),
        ZooEntry(
            "RealESRGAN_x4plus",
            "https://github.com/xinntao/Real-ESRGAN/releases/download/v0.1.0/RealESRGAN_x4plus.pth",
            "RealESRGAN_x4plus.pth",
            "Real-ESRGAN ×4 for real-world photos (blind degradations); BasicSR keys",
            sha256="4fa0d38905f75ac06eb49a7951b426670021be3018265fd191d2125df9d682f1",
            size=67_040_989,
        ),
        ZooEntry(
            "RealESRGAN_x2plus",
            "https://github.com/xinntao/Real-ESRGAN/releases/download/v0.2.1/RealESRGAN_x2plus.pth",
            "RealESRGAN_x2plus.pth",
            "Real-ESRGAN ×2 (pixel-unshuffle RRDBNet); BasicSR keys",
            sha256="49fafd45f8fd7aa8d31ab2a22d14d91b536c34494a5cfe31eb5d89c2fa266abb",
            size=67_061_725,
        ),
        ZooEntry(
            "RealESRGAN_x4plus_anime_6B",
            "https://github.com/xinntao/Real-ESRGAN/releases/download/v0.2.2.4/RealESRGAN_x4plus_anime_6B.pth",
            "RealESRGAN_x4plus_anime_6B.pth",
            "Real-ESRGAN ×4 for anime illustrations (6 RRDBs); BasicSR keys",
            sha256="f872d837d3c90ed2e05227bed711af5671a6fd1c9f7d7e91c911a61f155e99da",
            size=17_938_799,
        ),
        ZooEntry(
            "realesr-general-x4v3",
            "https://github.com/xinntao/Real-ESRGAN/releases/download/v0.2.5.0/realesr-general-x4v3.pth",
            "realesr-general-x4v3.pth",
            "Real-ESRGAN's fast general model (SRVGGNetCompact, 64 features, 32 convs, ×4); the CPU choice",
            size=4_885_111,
        ),
        ZooEntry(
            "realesr-animevideov3",
            "https://github.com/xinntao/Real-ESRGAN/releases/download/v0.2.5.0/realesr-animevideov3.pth",
            "realesr-animevideov3.pth",
            "Real-ESRGAN's fast anime-video model (SRVGGNetCompact, 64 features, 16 convs, ×4)",
        ),
    )
}


def cache_dir() -> Path:
    if os.environ.get("ESRGAN_CACHE"):
        return Path(os.environ["ESRGAN_CACHE"]).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "esrgan"


def cached_path(name: str) -> Path | None:
    """The cached file of zoo model `name`, or None if it has not been downloaded."""
    path = cache_dir() / MODEL_ZOO[name].filename
    return path if path.is_file() else None


def fetch(name: str, *, progress: bool = True) -> Path:
    """The local file of zoo model `name`, downloading and verifying it first if needed."""
    entry = MODEL_ZOO[name]
    cached = cached_path(name)
    if cached is not None:
        return cached
    return download(entry, cache_dir() / entry.filename, progress=progress)


def download(entry: ZooEntry, dest: Path, *, progress: bool = True) -> Path:
    """Download `entry.url` to `dest`, verified; DownloadError with a way out on any failure."""
    how_to = (
        f"Download it yourself from {entry.url} and pass the file's path (esrgan upscale --model PATH), "
        f"or save it as {dest}."
    )
    digest = hashlib.sha256()
    try:
        with atomic_writer(dest, overwrite=True) as out:  # nothing appears at `dest` unless verified
            try:
                with urllib.request.urlopen(entry.url, timeout=30) as response:
                    if "text/html" in (response.headers.get("Content-Type") or ""):
                        raise DownloadError(
                            f"downloading {entry.name}: the server sent a web page instead of the file. "
                            f"{how_to}"
                        )
                    total = int(response.headers.get("Content-Length") or 0) or entry.size
                    bar = _progress_bar(total, entry.filename) if progress else None
                    size = 0
                    while chunk := response.read(_CHUNK):
                        out.write(chunk)
                        digest.update(chunk)
                        size += len(chunk)
                        if bar is not None:
                            bar.update(len(chunk))
                    if bar is not None:
                        bar.close()
            except (urllib.error.URLError, TimeoutError, ConnectionError, http.client.HTTPException) as exc:
                reason = getattr(exc, "reason", exc)
                raise DownloadError(
                    f"could not download {entry.name} from {entry.url} ({reason}); are you offline? {how_to}"
                ) from exc
            if entry.size is not None and size != entry.size:
                raise DownloadError(
                    f"downloaded {entry.name} has {size} bytes, expected {entry.size} (incomplete?). {how_to}"
                )
            if entry.sha256 is not None and digest.hexdigest() != entry.sha256:
                raise DownloadError(
                    f"downloaded {entry.name} has SHA-256 {digest.hexdigest()}, expected {entry.sha256}; "
                    f"the file was discarded. {how_to}"
                )
    except OSError as exc:  # a read-only home, a file where the folder should be, a full disk, …
        raise DownloadError(
            f"cannot write {dest} ({exc.strerror or exc}); set ESRGAN_CACHE to a writable folder. {how_to}"
        ) from exc
    return dest


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def _progress_bar(total: int | None, name: str):  # type: ignore[no-untyped-def]
    from tqdm import tqdm

    return tqdm(total=total, unit="B", unit_scale=True, unit_divisor=1024, desc=name, leave=False)
