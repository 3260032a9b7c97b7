"""Images to PDF: JPEG, PNG, GIF (first frame), TIFF (every page), one per page, fitted."""

from __future__ import annotations

from pathlib import Path
from typing import Final

from PIL import Image, ImageOps, UnidentifiedImageError
from reportlab.lib.utils import ImageReader
from reportlab.pdfgen import canvas

from printsrv.documents.convert.common import (
    MARGIN,
    PAGE_SIZES,
    ConversionFailed,
    Limits,
    check_deadline,
)

__all__ = ["MAX_IMAGE_PIXELS", "image_to_pdf"]

# Pixels an image may have; a decompression bomb declares far more.
MAX_IMAGE_PIXELS: Final = 60_000_000


def image_to_pdf(
    source: Path, target: Path, *, name: str, key: str, limits: Limits, deadline: float
) -> None:
    """Place each image (each TIFF page; a GIF's first frame) on its own page, fitted.

    The page turns landscape for a landscape image; an image is shrunk to fit inside the
    margins, never enlarged past its own size (at its DPI, 72 when unknown).
    """
    expected = {"jpeg": "JPEG", "png": "PNG", "gif": "GIF", "tiff": "TIFF"}[key]
    try:
        with Image.open(source) as image:
            if image.format != expected:
                raise ConversionFailed(name, f"the image is {image.format}, not {expected}")
            frames = getattr(image, "n_frames", 1) if key == "tiff" else 1
            if frames > limits.max_pages:
                raise ConversionFailed(
                    name, f"it has {frames} pages; at most {limits.max_pages} are allowed"
                )
            pdf = canvas.Canvas(str(target), pageCompression=1)
            pdf.setTitle(name)
            pdf.setCreator("printsrv")
            for index in range(frames):
                check_deadline(name, limits, deadline)
                image.seek(index)
                pixels = image.width * image.height
                if pixels > MAX_IMAGE_PIXELS:
                    raise ConversionFailed(
                        name,
                        f"the image has {image.width} x {image.height} pixels; "
                        f"at most {MAX_IMAGE_PIXELS:,} are allowed",
                    )
                _place_image(pdf, image, source=source, key=key, page_size=limits.page_size)
            pdf.save()
    except ConversionFailed:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise ConversionFailed(name, f"the image is too large ({exc})") from None
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError, EOFError) as exc:
        raise ConversionFailed(name, f"the image is broken ({exc})", kind="damaged") from None


def _place_image(
    pdf: canvas.Canvas, image: Image.Image, *, source: Path, key: str, page_size: str
) -> None:
    """Draw the current frame of ``image`` centred on a page of its own."""
    dpi = image.info.get("dpi", (72, 72))
    try:
        dpi_x, dpi_y = (float(d) or 72.0 for d in dpi)
    except (TypeError, ValueError):
        dpi_x = dpi_y = 72.0
    orientation = image.getexif().get(0x0112, 1) if key == "jpeg" else 1
    if orientation != 1:
        frame = ImageOps.exif_transpose(image)
        reader = ImageReader(_printable(frame))
        if orientation in (5, 6, 7, 8):
            dpi_x, dpi_y = dpi_y, dpi_x
    elif key == "jpeg" and image.mode in ("RGB", "L", "CMYK"):
        reader = ImageReader(str(source))  # reportlab embeds the JPEG bytes as they are
        frame = image
    else:
        frame = image
        reader = ImageReader(_printable(image))
    natural_w = frame.width / dpi_x * 72
    natural_h = frame.height / dpi_y * 72
    short, long = PAGE_SIZES[page_size]
    page = (long, short) if natural_w > natural_h else (short, long)
    pdf.setPageSize(page)
    room_w, room_h = page[0] - 2 * MARGIN, page[1] - 2 * MARGIN
    scale = min(1.0, room_w / natural_w, room_h / natural_h)
    draw_w, draw_h = natural_w * scale, natural_h * scale
    pdf.drawImage(
        reader, (page[0] - draw_w) / 2, (page[1] - draw_h) / 2, width=draw_w, height=draw_h
    )
    pdf.showPage()


def _printable(image: Image.Image) -> Image.Image:
    """The image in a mode reportlab embeds: transparency flattened onto white paper."""
    if image.mode in ("RGB", "L", "CMYK"):
        return image.copy()
    if image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info):
        rgba = image.convert("RGBA")
        paper = Image.new("RGB", rgba.size, "white")
        paper.paste(rgba, mask=rgba.getchannel("A"))
        return paper
    return image.convert("RGB")
