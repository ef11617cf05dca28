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
# # 06 Results and report
#
# [![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/facesr-kit/facesr-kit/blob/main/notebooks/06_results_and_report.ipynb)
#
# Regenerates every figure and table of the report from the run folders of notebooks 03-05 and of the
# in-budget runs of notebook 07 (your edition's, e.g. `msrresnet20` or `msrresnet26`, `swinir`, `rcan`, and
# their `_l2` MSE finishes, those you trained): training-loss curves, validation PSNR of all models on one axis, the best-PSNR table (plain,
# hflip and x8 self-ensemble), the parameter table, the training
# machine of each run, a qualitative grid with eye and mouth crops, every model on the real-world LQ
# images, then the test predictions, the leaderboard zip and the course hand-in bundle.
# Everything goes to `FIGURES_DIR` as `.png`, `.csv` and `.md`. A run that does not exist yet is
# skipped with a note saying which notebook trains it.

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
# Settings. Relative paths are relative to the kit. FACESR_QUICK=1, FACESR_DATA, FACESR_RUNS, FACESR_FIGURES override them.
DATA_ROOT = "data/FFHQ"  #@param {type:"string"}
RUNS_DIR = "checkpoints"  #@param {type:"string"}
FIGURES_DIR = ""  #@param {type:"string"}
QUICK = False  #@param {type:"boolean"}
EDITION = "project"  #@param ["project", "2022", "2023", "2024", "2025"]
MODELS = ""  #@param {type:"string"}
TTA = True  #@param {type:"boolean"}
VAL_LIMIT = 0  #@param {type:"integer"}
X8_LIMIT = 0  #@param {type:"integer"}
FACES = "0,1"  #@param {type:"string"}
EYES_BOX = "0.35,0.50,0.20,0.80"  #@param {type:"string"}
MOUTH_BOX = "0.68,0.82,0.30,0.70"  #@param {type:"string"}
SUBMIT_RUN = ""  #@param {type:"string"}
MATRIC = ""  #@param {type:"string"}
CODALAB_NAME = ""  #@param {type:"string"}
SCREENSHOT = ""  #@param {type:"string"}
TRUST_CHECKPOINT = False  #@param {type:"boolean"}
# EDITION "project": your project's, saved on Drive (else what the data say); FIGURES_DIR "": the project's,
# MyDrive/facesr/figures/<edition>/ (without a Drive: figures/).
# MODELS: runs to compare ("" = the edition's: srgan, esrgan, esrgan_gan, its in-budget configs, their _l2
# finishes). VAL_LIMIT, X8_LIMIT = 0: every val image (x8 in quick mode: 1). FACES: val images of the grid; boxes:
# top,bottom,left,right fractions. SUBMIT_RUN "" = the in-budget run with the best val PSNR. MATRIC, CODALAB_NAME,
# SCREENSHOT (your CodaLab score's image, e.g. a file in MyDrive): for the hand-in ("" = a blank, listed missing).
# TRUST_CHECKPOINT = True runs code from checkpoint files: only for trusted files the weights-only load refuses.

# %%
from facesr.colab import resolve_settings
SETTINGS = resolve_settings(data_root=DATA_ROOT, runs_dir=RUNS_DIR, figures_dir=FIGURES_DIR, quick=QUICK,
                            edition=EDITION, notebook="06_results_and_report")
print(SETTINGS)

# %%
from facesr.report.runs import find_runs, read_logs
from facesr.config.named_configs import in_budget_names
MODEL_NAMES = [m.strip() for m in MODELS.split(",") if m.strip()] or ["srgan", "esrgan", "esrgan_gan",
                                                                      *in_budget_names(SETTINGS.edition)]
RUNS = find_runs(SETTINGS.runs_dir, MODEL_NAMES, finishes=True)  # prints a note for each missing run
LOGS = read_logs(RUNS)
print("runs found:", ", ".join(f"{name} ({path})" for name, path in RUNS.items()) or "none")

# %% [markdown]
# ## 1. Training-loss curves
#
# One panel per model, every loss term of its log (log scale: the GAN terms differ by orders of magnitude).

# %%
from facesr.report.curves import plot_loss_curves
from facesr.report.style import save_figure
fig = plot_loss_curves({name: log for name, (log, _) in LOGS.items()})
print(f"saved {save_figure(fig, SETTINGS.figures_dir, '06_loss_curves')}")

# %% [markdown]
# ## 2. Validation PSNR against iterations
#
# All models on one axis, each in its colour, with bicubic x4 as the floor. The GAN run starts from the
# RRDBNet's PSNR and usually loses some of it: its objective is texture, not pixel accuracy.

# %%
from facesr.report.curves import plot_psnr_curves
from facesr.report.tables import bicubic_scores
BICUBIC = bicubic_scores(SETTINGS.data_root)
fig = plot_psnr_curves({name: val for name, (_, val) in LOGS.items()}, bicubic_psnr=BICUBIC["psnr"])
print(f"saved {save_figure(fig, SETTINGS.figures_dir, '06_psnr_curves')}")

# %% [markdown]
# ## 3. Best-PSNR table
#
# Each run's best checkpoint scored on the validation set like the leaderboard (RGB PSNR, 0-255, whole
# image, 4 decimals: submissions differ in the third; SSIM beside it), plain and self-ensembled: `_hflip`
# averages the outputs of the input and its mirror image (2x the time; faces are aligned, so this is the
# face-safe ensemble), `_x8` the 8 flips and rotations (8x). `within_limit` is your edition's parameter limit.
# `images` says how many val images plain and hflip scored (all of them, unless `VAL_LIMIT`), `images_x8`
# how many x8 scored: in quick mode only the first (`X8_LIMIT`), because x8 of a 512x512 output takes
# seconds per image on a CPU. An x8 mean over fewer images does not compare with the others, so it is not
# used to pick the submission below.

# %%
from facesr.report.tables import psnr_table, save_table
x8_limit = X8_LIMIT or (1 if SETTINGS.quick else 0)
PSNR_TABLE = psnr_table(RUNS, SETTINGS.data_root, tta=TTA, limit=VAL_LIMIT or None, x8_limit=x8_limit or None,
                        trust=TRUST_CHECKPOINT, edition=SETTINGS.edition)
print("saved", *save_table(PSNR_TABLE, SETTINGS.figures_dir, "psnr_table"))
PSNR_TABLE

# %% [markdown]
# ## 4. Parameter table
#
# Counted from the networks themselves, every parameter as the handout counts them (frozen ones too).
# "ESRGAN (discriminator)" adds the ModifiedVGG discriminator and the VGG19 features of the perceptual loss
# to the generator: everything a GAN training step runs; only generators are held to the limit, so its
# `within_limit` stays empty. The in-budget rows are notebook 07's full-size configs of your edition.

# %%
from facesr.report.budget import parameter_budget_table
PARAM_TABLE = parameter_budget_table(SETTINGS.edition)
print("saved", *save_table(PARAM_TABLE, SETTINGS.figures_dir, "param_table"))
PARAM_TABLE

# %% [markdown]
# ## 5. The training machine
#
# The report states the number and model of the GPUs. Every run folder records where it trained in
# `run_info.json` (written with the checkpoints): GPU model and count or the CPU, torch and CUDA versions,
# the AMP dtype, wall hours and iterations per second. A run resumed on another machine lists both.

# %%
from facesr.report.tables import machine_table
MACHINE_TABLE = machine_table(RUNS)
print("saved", *save_table(MACHINE_TABLE, SETTINGS.figures_dir, "machine_table"))
MACHINE_TABLE

# %% [markdown]
# ## 6. Qualitative comparison
#
# LQ | bicubic | every run found (SRGAN, ESRGAN, ESRGAN+GAN, the in-budget runs) | GT for a few validation
# faces, with zoomed crops of the eyes and the mouth (boxes from the settings, drawn on the whole faces) and
# each output's PSNR.

# %%
from facesr.report.figures import comparison_images, plot_comparison
from facesr.report.steps import parse_box
from facesr.inference.predict import load_generator
CROPS = {"eyes": parse_box(EYES_BOX), "mouth": parse_box(MOUTH_BOX)}
NETS = {name: load_generator(run_dir, trust=TRUST_CHECKPOINT) for name, run_dir in RUNS.items()}  # best.pt
for face in [f.strip() for f in FACES.split(",") if f.strip()]:
    images = comparison_images(NETS, SETTINGS.data_root, int(face) if face.isdigit() else face,
                               trust=TRUST_CHECKPOINT)
    fig = plot_comparison(images, CROPS, title=f"val face {face}")
    print(f"saved {save_figure(fig, SETTINGS.figures_dir, f'06_qualitative_{face}')}")

# %% [markdown]
# ## 7. Real-world LQ images
#
# The report shows predictions on the real-world LQ images released with the test set (`test_real/` in
# the data root: any size, no GT, so no PSNR): each image with bicubic x4 and every model's output.
# These faces are not aligned like FFHQ; how the models cope is what the report discusses.

# %%
from facesr.report.steps import show_real_world
fig = show_real_world(NETS, SETTINGS.data_root, SETTINGS.figures_dir,
                      trust=TRUST_CHECKPOINT)  # a note when there is no test_real/

# %% [markdown]
# ## 8. Test predictions and the leaderboard zip
#
# The in-budget run with the best validation PSNR (or `SUBMIT_RUN`) super-resolves `test/LQ` with the
# self-ensemble that scored best for it on val into its `test_predictions/`; `submission.zip` beside them
# holds `results/00000.png ...`. The generator's parameter count is checked first. The real-world LQ
# images get the same treatment, into the run folder's `test_real_predictions/`. The zip gets a row in
# `RUNS_DIR/submissions.csv` with the test PSNR its val PSNR leads to expect; record CodaLab's score with
# `python -m facesr submissions --score ROW_OR_ZIP PSNR` and the hand-in's Readme names it.

# %%
from facesr.report.steps import make_submission, predict_real_world
from facesr.report.tables import best_tta, submission_run
SUBMIT = SUBMIT_RUN or submission_run(PSNR_TABLE)
if SUBMIT is None:
    print("no in-budget run to submit: train notebook 03 or 07 first")
else:  # the generator loaded above, or the SUBMIT_RUN given
    NET_G = NETS[SUBMIT] if SUBMIT in NETS else load_generator(SETTINGS.runs_dir / SUBMIT,
                                                               trust=TRUST_CHECKPOINT)
    # the best ensemble of the table; none in quick mode, where the test predictions run on a CPU
    SUBMIT_TTA = best_tta(PSNR_TABLE, SUBMIT) if TTA and SUBMIT in RUNS and not SETTINGS.quick else None
    ZIP = make_submission(NET_G, SETTINGS.data_root, SETTINGS.runs_dir / SUBMIT, tta=SUBMIT_TTA,
                          edition=SETTINGS.edition, psnr_table=PSNR_TABLE)  # logged in RUNS_DIR/submissions.csv
    predict_real_world(NET_G, SETTINGS.data_root, SETTINGS.runs_dir / SUBMIT, tta=SUBMIT_TTA)

# %% [markdown]
# ## 9. The hand-in bundle
#
# One zip with what the course asks for besides the report: the leaderboard zip, the submitted run's
# `config.json`, logs, `run_info.json` and best checkpoint (an MSE finish: its first stage's logs too), its
# real-world predictions, your figures and tables (those the manifest in `FIGURES_DIR` says were made for this
# run's edition and mode, on whichever runtime), the CodaLab screenshot (`SCREENSHOT`), the kit's code and a
# `Readme.txt` (files, libraries with their versions, the commands that reproduce the run, parameter count
# against your edition's limit, val PSNR, the zip's self-ensemble). Whatever is still missing is listed there and
# printed, with the notebook that makes it. The same as
# `python -m facesr handin RUN --out FILE.zip --matric ID --codalab NAME --screenshot FILE`.
# Running this cell again never replaces a bundle you may have edited: it writes `<run>_handin_2.zip`, `_3`, ...

# %%
from facesr.report import make_handin
from facesr.report.handin import unused_bundle_name
if SUBMIT is not None:
    HANDIN = make_handin(SETTINGS.runs_dir / SUBMIT, unused_bundle_name(SETTINGS.runs_dir / f"{SUBMIT}_handin.zip"),
                         matric=MATRIC or None, codalab=CODALAB_NAME or None, data_root=SETTINGS.data_root,
                         figures_dir=SETTINGS.figures_dir, trust_checkpoint=TRUST_CHECKPOINT,
                         edition=SETTINGS.edition, screenshot=SCREENSHOT or None)
    print(f"hand-in bundle: {HANDIN}")
