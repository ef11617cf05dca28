# ---
# jupyter:
#   accelerator: GPU
#   colab:
#     gpuType: T4
#     provenance: []
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # 01 Data exploration
#
# [![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/facesr-kit/facesr-kit/blob/main/notebooks/01_data_exploration.ipynb)
#
# What the course data looks like before any training: the folder check, a look at the faces, the
# colour statistics of GT and LQ, and the number every model has to beat, bicubic x4 on the validation set.
#
# The data: mini FFHQ in `data/FFHQ/` with training GT faces (`train/GT`, 512x512), validation pairs (`val/LQ`
# 128x128 and `val/GT`), test LQ (`test/LQ`) and a few real-world LQ faces (`test_real/`); how many depends on
# your edition of the course (`EDITION`: 2022, 2023, 2024 or 2025), and so do the parameter limit, the
# degradation and the scores to beat, printed in section 0. On Colab the set-up cell unpacks
# `MyDrive/facesr/FFHQ.zip` from your Drive to local disk once; with `QUICK` (or `FACESR_QUICK=1`) the
# notebook runs on the small bundled sample set instead (not FFHQ: a few faces and photos, for trying things out).

# %%
# Set-up, the same in every notebook: find the kit (opened from its badge: clone KIT_REPO at KIT_BRANCH, or update
# that clone), put its lib/ on the path; facesr.colab mounts Drive, links checkpoints/ into it, unpacks the data.
KIT_REPO = "https://github.com/facesr-kit/facesr-kit"  #@param {type:"string"}
KIT_BRANCH = "main"  #@param {type:"string"}
import os, subprocess, sys
KIT = next((os.path.abspath(p) for p in ("..", ".") if os.path.isdir(f"{p}/lib/facesr")), None)
if KIT is None:  # opened from its badge: the kit is cloned once beside it, and updated on every run of this cell
    KIT = os.environ.get("FACESR_KIT", "/content/facesr-kit")
    if not os.path.isdir(KIT):
        subprocess.run(["git", "clone", "-q", "-b", KIT_BRANCH, KIT_REPO, KIT], check=True)
    elif subprocess.run(["git", "-C", KIT, "pull", "-q", "--ff-only", KIT_REPO, KIT_BRANCH]).returncode:
        print(f"note: could not update {KIT} from {KIT_REPO} ({KIT_BRANCH}): local changes or another history; "
              "it is used as it is (delete that folder to clone afresh)")
sys.path.insert(0, f"{KIT}/lib")
from facesr.colab import setup_runtime
RUNTIME = setup_runtime(KIT)

# %% tags=["parameters"]
# Settings. Relative paths are relative to the kit. FACESR_QUICK=1, FACESR_DATA, FACESR_FIGURES override them.
DATA_ROOT = "data/FFHQ"  #@param {type:"string"}
FIGURES_DIR = ""  #@param {type:"string"}
QUICK = False  #@param {type:"boolean"}
NUM_SHOW = 8  #@param {type:"integer"}
HIST_IMAGES = 100  #@param {type:"integer"}
EDITION = "project"  #@param ["project", "2022", "2023", "2024", "2025"]
# EDITION "project": your project's, saved on Drive (else what the data say); FIGURES_DIR "": the project's,
# MyDrive/facesr/figures/<edition>/ (without a Drive: figures/).

# %%
from facesr.colab import resolve_settings
SETTINGS = resolve_settings(data_root=DATA_ROOT, figures_dir=FIGURES_DIR, quick=QUICK, edition=EDITION, notebook="01_data_exploration")
print(SETTINGS)

# %% [markdown]
# ## 0. Your edition of the course
#
# The same project ran in 2022, 2023, 2024 and 2025 with other data, limits and degradations
# (docs/course.md section 2). Everything in the kit follows `EDITION`: the limit every budget check uses, the
# degradation training uses, the configs and the hand-in. Below: its facts, then the published results to beat
# (scores of one edition do not compare with another's: other val and test images).

# %%
from IPython.display import Markdown, display
from facesr.editions import get_edition, results_table
print(get_edition(SETTINGS.edition).summary())
display(Markdown(results_table(SETTINGS.edition)))

# %% [markdown]
# ## 1. Check the data set
#
# `check_dataset` decodes every file and reports missing folders, unreadable or odd-sized images and
# LQ/GT name mismatches, all at once, and what differs from your edition's data (counts, real-world images,
# the BasicSR `meta_info` list of 2024/2025) as warnings. Fix every error before training; warnings are for
# information (a subset of the data is fine for trying things out).
# The optional `test_real/` folder (the real-world LQ images released with the test set: any size, no GT)
# is listed when the data root has it; notebook 06 shows every model's output of them.

# %%
from facesr.data.check import check_dataset
from facesr.report.explore import dataset_summary
REPORT = check_dataset(SETTINGS.data_root, edition=SETTINGS.edition)
print(REPORT)
dataset_summary(REPORT)

# %% [markdown]
# ## 2. The faces
#
# Training GT faces (512x512), then validation LQ inputs (128x128, drawn with unsmoothed pixels) beside
# their GT. The LQ images went through an unknown mix of blur, downscaling, noise and JPEG
# (notebook 02 shows the training version of that pipeline).

# %%
from facesr.data.images import list_images, read_image
from facesr.report.explore import show_images
from facesr.report.style import save_figure
TRAIN_PATHS = list_images(SETTINGS.data_root / "train" / "GT")
TRAIN_GT = [read_image(p) for p in TRAIN_PATHS[:NUM_SHOW]]
fig = show_images(TRAIN_GT, [p.name for p in TRAIN_PATHS[:NUM_SHOW]], suptitle="train/GT (512x512)")
print("saved", save_figure(fig, SETTINGS.figures_dir, "01_train_gt"))

# %%
VAL_PATHS = list_images(SETTINGS.data_root / "val" / "LQ")[: max(1, NUM_SHOW // 2)]
VAL_LQ = [read_image(p) for p in VAL_PATHS]
VAL_GT = [read_image(SETTINGS.data_root / "val" / "GT" / p.name) for p in VAL_PATHS]
fig = show_images(
    [img for pair in zip(VAL_LQ, VAL_GT, strict=True) for img in pair],
    [f"{p.name} {kind}" for p in VAL_PATHS for kind in ("LQ 128x128", "GT 512x512")],
    suptitle="val: LQ input beside its GT",
)
print("saved", save_figure(fig, SETTINGS.figures_dir, "01_val_pairs"))

# %% [markdown]
# ## 3. Colour statistics
#
# Per-channel intensity histograms of training GT, validation GT and validation LQ. Blur and downscaling
# smooth the image but barely move its colour distribution, so the LQ curve should follow the GT ones; a
# clear shift would mean a colour difference the network has to learn too.

# %%
from facesr.report.explore import channel_histograms
n_hist = min(HIST_IMAGES, 8) if SETTINGS.quick else HIST_IMAGES
ALL_VAL = list_images(SETTINGS.data_root / "val" / "LQ")[:n_hist]
fig = channel_histograms(
    {
        "train GT": [read_image(p) for p in TRAIN_PATHS[:n_hist]],
        "val GT": [read_image(SETTINGS.data_root / "val" / "GT" / p.name) for p in ALL_VAL],
        "val LQ": [read_image(p) for p in ALL_VAL],
    }
)
print("saved", save_figure(fig, SETTINGS.figures_dir, "01_channel_histograms"))

# %% [markdown]
# ## 4. The number to beat: bicubic x4
#
# Upscaling each validation LQ with OpenCV bicubic interpolation and scoring it like the leaderboard
# (PSNR on RGB, 0-255, whole image; SSIM beside it). Any trained model must beat this; the course
# baseline (MSRResNet, notebook 03) reaches the edition's baseline score printed in section 0 on the real
# validation set.

# %%
from facesr.report.tables import bicubic_scores
BICUBIC = bicubic_scores(SETTINGS.data_root)
print(f"bicubic x4 on {SETTINGS.data_root / 'val'}: PSNR {BICUBIC['psnr']:.2f} dB, SSIM {BICUBIC['ssim']:.4f}")

# %%
from facesr.report.figures import comparison_images, plot_comparison
fig = plot_comparison(comparison_images({}, SETTINGS.data_root, name=0), title="val image 0: LQ, bicubic x4, GT")
print("saved", save_figure(fig, SETTINGS.figures_dir, "01_bicubic_example"))

# %% [markdown]
# Next: notebook 02 shows how the training LQ images are made from the GT faces, step by step.
