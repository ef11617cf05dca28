"""The kit's own files out of Drive's Trash, for good (Colab only).

A file that Colab's Drive mount replaces or deletes goes to Drive's Trash and counts against the quota for 30
days (docs/course.md section 12). The kit writes its checkpoints in place on Drive so that hardly anything lands
there (:mod:`facesr.training.checkpoint_files`), but run folders written by an older kit, or by hand, may have
filled it. :func:`empty_kit_trash` deletes for good the trashed files that the kit wrote in its own folder
(``MyDrive/facesr/`` and below: checkpoints, their temp files, run logs and records), through the Drive API as
the signed-in user; nothing else of the student's is touched. Only Colab has the two libraries it needs
(``google.colab.auth`` signs in, ``googleapiclient`` talks to Drive); elsewhere it says so and does nothing.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Iterator

KIT_FOLDER = "facesr"  # MyDrive/facesr: the kit's folder on Drive (facesr.colab.drive)
FOLDER_TYPE = "application/vnd.google-apps.folder"
# The names of the files the kit writes under MyDrive/facesr (atomic writes leave .<name>.<random>.tmp behind).
KIT_FILES = ("latest.pt", "previous.pt", "best.pt", "iter_[0-9][0-9][0-9][0-9][0-9][0-9].pt", ".latest.swap.pt",
             ".staged.pt", "checksums.json", "run_info.json", "config.json", "log.csv", "val.csv", "manifest.json",
             "settings.json", ".*.tmp", "*.tmp")


def is_kit_file(name: str) -> bool:
    """Whether a file name is one the kit writes into its Drive folder (:data:`KIT_FILES`)."""
    return any(fnmatch.fnmatchcase(name, pattern) for pattern in KIT_FILES)


def _pages(files: object, query: str, fields: str) -> Iterator[dict]:
    token = None
    while True:
        page = files.list(q=query, fields=f"nextPageToken, files({fields})", pageSize=1000, pageToken=token).execute()
        yield from page.get("files", [])
        token = page.get("nextPageToken")
        if not token:
            return


def _kit_folders(files: object) -> list[str]:
    """Ids of MyDrive/facesr and of every folder below it."""
    found = [f["id"] for f in _pages(files, f"'root' in parents and name = '{KIT_FOLDER}' and mimeType = "
                                            f"'{FOLDER_TYPE}'", "id, name")]
    todo = list(found)
    while todo:
        parent = todo.pop()
        children = [f["id"] for f in _pages(files, f"'{parent}' in parents and mimeType = '{FOLDER_TYPE}'", "id, name")]
        found += children
        todo += children
    return found


def empty_kit_trash(dry_run: bool = False) -> int:
    """Delete for good the kit's own files in Drive's Trash (see the module docstring); return the bytes freed.

    Args:
        dry_run: Only list what would be deleted.
    """
    try:
        from google.colab import auth
        from googleapiclient.discovery import build
    except ImportError:
        print("empty_kit_trash needs Colab (google.colab.auth and googleapiclient): run it in a Colab notebook; "
              "elsewhere empty the Trash at drive.google.com/drive/trash")
        return 0
    auth.authenticate_user()  # asks once which Google account; the Drive API acts as that user
    files = build("drive", "v3", cache_discovery=False).files()
    count = freed = 0
    for folder in _kit_folders(files):
        query = f"'{folder}' in parents and trashed = true and mimeType != '{FOLDER_TYPE}'"
        for f in _pages(files, query, "id, name, quotaBytesUsed"):
            if not is_kit_file(f["name"]):
                continue
            if not dry_run:
                files.delete(fileId=f["id"]).execute()
            count += 1
            freed += int(f.get("quotaBytesUsed") or 0)
    verb = "would delete" if dry_run else "deleted"
    print(f"{verb} {count} of the kit's trashed files for good ({freed:,} bytes)")
    return freed
