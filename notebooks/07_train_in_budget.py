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
# # 07 Train within the budget: any in-budget network, distilled from RRDBNet, weights averaged
#
# [![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/facesr-kit/facesr-kit/blob/main/notebooks/07_train_in_budget.ipynb)
#
# The leaderboard takes generators up to a parameter limit (every parameter counts, frozen ones too, as the
# handout counts them): 1,821,085 in 2022, 2,276,356 in 2023-2025. Three configs fill each edition's budget:
# for 2022 `msrresnet20` (MSRResNet with 20 blocks, 1,812,995), `swinir` (SwinIR, embed 84, 4x6 blocks,
# window 8: 1,766,292) and `rcan` (RCAN, 64 features, 3 groups of 6 blocks: 1,786,531); for 2023-2025
# `msrresnet26` (2,256,131), `swinir` (embed 78, 6x6 blocks: 2,251,758) and `rcan` (4 groups of 6 blocks:
# 2,270,075), and `python -m facesr params --edition YEAR` lists them. Five newer lightweight networks are sized to
# each limit by `facesr.models.size_to_budget`: `omnisr` (Omni-SR), `span` (SPAN, counted in its fused form),
# `realplksr`, `dat` (DAT-light) and `atd` (ATD-light). All but the MSRResNets are the authors' networks from the
# `spandrel` package, with their official state-dict names. All train with one fixed-budget recipe,
# so that they compare at equal iterations:
#
# - **One cosine period after a warm-up.** The learning rate rises linearly over the first 5k iterations
#   (Adam's moment estimates start empty, and a transformer diverges from a cold start at full lr), then
#   falls along a single cosine to 1e-7 at the last iteration. The course's schedule restarts at 150k, and
#   each restart costs about 0.1 dB before it recovers.
# - **EMA weights.** What is validated, saved and submitted is an exponential moving average of the
#   trained weights (decay 0.999): smoother than the weights of any single iteration and free at test time.
#   Picking the best of many noisy checkpoints on the val set also flatters the val score less.
# - **The MSE finish.** A short second stage (a tenth of the iterations, at a tenth of the lr) starts from
#   the first stage's EMA weights with an L2 loss instead of L1. PSNR is a log of the MSE: L1 pulls the
#   network towards the median of the plausible HR faces, L2 towards their mean, which is what PSNR rewards.
# - **hflip, the face-safe self-ensemble.** Averaging the outputs of the LQ image and of its mirror image
#   (2x the time) helps because training flips faces horizontally too. The x8 ensemble also rotates the
#   input in 90-degree steps: it shows the network upside-down and sideways faces, which it never saw
#   (the faces are aligned and the course forbids vertical flips), so it can gain less or even lose.
#
# Two more steps towards the top of the leaderboard:
#
# - **Distillation** (`TEACHER`). Notebook 04's RRDBNet is the best net you train, and 9x over the limit. With
#   `TEACHER = "esrgan"` this notebook trains `<CONFIG>_kd`: the same run with an extra term, the L1 distance
#   between the student's output and the frozen RRDBNet's output on the same batch (`l_distill` in `log.csv`).
#   The teacher is only used for training: it is never saved with the student nor counted in its parameters.
# - **Weight averaging** (`AVERAGE_LAST`). The EMA weights of the last kept checkpoints are averaged into a run
#   folder of their own, `<run>_avg`, scored, zipped and handed in like any run; the table below puts the
#   plain and the averaged weights side by side.
#
# Each config's `why`, printed with it, explains its own choices: patch size, lr, gradient clipping,
# precision (SwinIR's attention overflows in fp16) and the measured memory of one training step.
#
# Training checkpoints to `RUNS_DIR/<RUN_NAME>` (on Colab a folder in your Drive), the MSE finish to
# `RUNS_DIR/<RUN_NAME>_l2`, and both **resume by themselves**: when the runtime is recycled, run the
# notebook again from the top and the training cells continue from their last checkpoints.
#
# **Quick mode shows the workflow, not the results.** SwinIR and RCAN have no image skip connection:
# MSRResNet adds the bilinearly upscaled input to its output and starts at about bicubic quality, while an
# untrained SwinIR outputs noise and an untrained RCAN a flat image of the mean colour (about 7 and 10 dB on
# a sample val face, against 23.4 dB for bicubic). They need thousands of iterations to pass bicubic: minutes
# on a GPU, hours on a CPU. A quick-mode PSNR far below bicubic is expected here, not a bug.

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
CONFIG = "swinir"  #@param ["msrresnet20", "msrresnet26", "swinir", "rcan", "omnisr", "span", "realplksr", "dat", "atd"] {allow-input: true}
RUN_NAME = ""  #@param {type:"string"}
TEACHER = ""  #@param {type:"string"}
FINISH = True  #@param {type:"boolean"}
AVERAGE_LAST = 3  #@param {type:"integer"}
ITERS = 0  #@param {type:"integer"}
FINISH_ITERS = 0  #@param {type:"integer"}
BATCH_SIZE = 0  #@param {type:"integer"}
BASELINE_RUN = "srgan"  #@param {type:"string"}
X8_LIMIT = 0  #@param {type:"integer"}
TRUST_CHECKPOINT = False  #@param {type:"boolean"}
# EDITION "project": your project's, saved on Drive (else what the data say); FIGURES_DIR "": the project's,
# MyDrive/facesr/figures/<edition>/ (without a Drive: figures/). CONFIG: msrresnet26 is for 2023-2025 only; the others
# fill your edition's limit (the next cell lists them; or type the name of a network you registered). RUN_NAME = "":
# the config's name. TEACHER = "esrgan" (notebook 04's run in RUNS_DIR, or a run folder or checkpoint) trains
# <CONFIG>_kd, distilled from it; "": from the GT alone. FINISH: the MSE finish into <RUN_NAME>_l2. AVERAGE_LAST: the
# last stage's newest kept checkpoints averaged into <run>_avg (0: none). ITERS/FINISH_ITERS/BATCH_SIZE = 0 keep the
# configs'. BASELINE_RUN: notebook 03's run, drawn beside. X8_LIMIT = 0 scores x8 on every val image (quick mode: 1).
# TRUST_CHECKPOINT = True unpickles checkpoints in full (runs their code): only for trusted files the safe load refuses.

# %%
from facesr.colab import resolve_settings
SETTINGS = resolve_settings(data_root=DATA_ROOT, runs_dir=RUNS_DIR, figures_dir=FIGURES_DIR, quick=QUICK,
                            edition=EDITION, notebook="07_train_in_budget")
print(SETTINGS)

# %% [markdown]
# ## 1. The config and the parameter budget
#
# Your edition's in-budget configs (from the networks' records, `facesr.models`), every setting of the run and its
# `why`, then the generator's parameters against your edition's limit (counted on the network itself). Quick mode shrinks the run to CPU size; the note under the table says how.

# %%
from facesr.config import get_config, in_budget_names
from facesr.report.steps import overrides, show_config
print(f"in-budget configs of {SETTINGS.edition}: {', '.join(in_budget_names(SETTINGS.edition))}")
FIRST = f"{CONFIG}_kd" if TEACHER else CONFIG  # the _kd config distils from TEACHER
NAME = RUN_NAME or FIRST
CFG = get_config(FIRST, quick=SETTINGS.quick, edition=SETTINGS.edition,
                 **overrides(iters=ITERS, batch_size=BATCH_SIZE, teacher=TEACHER))
show_config(CFG)

# %% [markdown]
# ## How long will it take?
#
# The run's first iterations timed on this runtime's device (its own data loader, degradation and step;
# nothing is saved), and what that speed means for the whole run: hours, and Colab sessions (a recycled
# runtime loses nothing: each new session resumes from `latest.pt`).

# %%
from facesr.training.speed import plan_run
print(plan_run(CFG, SETTINGS.data_root, SETTINGS.runs_dir / NAME))

# %% [markdown]
# ## 2. Train (re-running this cell resumes)
#
# The progress bar shows the loss, the learning rate and the last validation PSNR (of the EMA weights).
# `best.pt` keeps the best PSNR, `latest.pt` the last checkpoint. Interrupting the cell is safe: re-run it
# to continue. Keep the settings the same when you resume (the trainer refuses a changed config).

# %%
from facesr.training import train
RUN_DIR = train(CFG, data_root=SETTINGS.data_root, runs_dir=SETTINGS.runs_dir, name=NAME,
                trust=TRUST_CHECKPOINT)

# %% [markdown]
# ## 3. The MSE finish (optional, re-running resumes too)
#
# `<CONFIG>_l2` starts from the EMA weights of the first stage's best checkpoint (`init=` its run folder)
# and trains with `pixel_loss="l2"` at a tenth of the lr, same network, data, batch and patch. Its own run
# folder keeps the first stage untouched, so both are scored and compared below.

# %%
STAGES = {RUN_DIR.name: RUN_DIR}  # the runs of this notebook, in training order
if FINISH:
    CFG_L2 = get_config(f"{CONFIG}_l2", quick=SETTINGS.quick, edition=SETTINGS.edition,
                        **overrides(iters=FINISH_ITERS, batch_size=BATCH_SIZE))
    show_config(CFG_L2)
    STAGES[f"{NAME}_l2"] = train(CFG_L2, data_root=SETTINGS.data_root, runs_dir=SETTINGS.runs_dir,
                                 name=f"{NAME}_l2", init=RUN_DIR, trust=TRUST_CHECKPOINT)
else:
    print("FINISH = False: no MSE finish; the first stage alone is scored and submitted")

# %% [markdown]
# ## 4. Curves against the baseline
#
# Left: the pixel loss of each stage (the finish continues where the first stage ended; its L2 loss sits
# far below an L1 loss, so compare the shapes, not the levels) and of notebook 03's baseline, dashed.
# Right: validation PSNR against iterations, with bicubic x4 as the floor. A note says so when the
# baseline run is missing: train notebook 03 first to see it here.

# %%
from facesr.report.steps import show_stage_curves
fig = show_stage_curves(STAGES, SETTINGS.runs_dir / BASELINE_RUN, SETTINGS.figures_dir, name="07_in_budget_curves")

# %% [markdown]
# ## 5. Weight averaging
#
# The EMA weights of the last stage's newest kept checkpoints (`iter_N.pt`; the config keeps `keep_last` of them)
# averaged entry by entry into `<run>_avg`, which records which checkpoints went in (`run_info.json`) and is
# scored on the val set into its `val.csv`. Averaging checkpoints thousands of iterations apart smooths over a
# longer stretch of the end of training than the EMA does. The average joins the PSNR table below and may be the
# stage that is submitted. A network with BatchNorm running statistics (DAT) is refused, the reason printed.
# `python -m facesr average RUN --last K` does the same.

# %%
from facesr.report.steps import average_stage
AVERAGED = average_stage(list(STAGES.values())[-1], AVERAGE_LAST, SETTINGS.data_root, trust=TRUST_CHECKPOINT)
if AVERAGED is not None:  # scored and zipped below like the other stages
    STAGES[AVERAGED.name] = AVERAGED

# %% [markdown]
# ## 6. Validation PSNR: plain, hflip and x8
#
# Each stage's best checkpoint on the whole validation set like the leaderboard (RGB PSNR, 0-255, whole
# image, 4 decimals; SSIM beside it), plain and with the two self-ensembles. `images` counts the val
# images plain and hflip scored, `images_x8` those x8 scored: in quick mode only the first (`X8_LIMIT`),
# because x8 of a 512x512 output takes seconds per image on a CPU. An x8 mean over fewer images does not
# compare with the others, so it is not used to pick the submission below.

# %%
from facesr.report.tables import psnr_table, save_table
x8_limit = X8_LIMIT or (1 if SETTINGS.quick else 0)
PSNR_TABLE = psnr_table(STAGES, SETTINGS.data_root, x8_limit=x8_limit or None, trust=TRUST_CHECKPOINT,
                        edition=SETTINGS.edition)
print("saved", *save_table(PSNR_TABLE, SETTINGS.figures_dir, "07_in_budget_psnr"))
from facesr.report.steps import expected_test_lines  # the test PSNR each val PSNR leads to expect
print(expected_test_lines(PSNR_TABLE, SETTINGS.edition, SETTINGS.runs_dir))
PSNR_TABLE

# %% [markdown]
# ## 7. The leaderboard zip
#
# The better stage (best val PSNR over plain and the ensembles scored on every image) super-resolves
# `test/LQ` with its best ensemble into its run folder's `test_predictions/`; `submission.zip` beside them
# holds `results/00000.png ...` for CodaLab. The parameter count is checked before anything is written.
# Every zip gets a row in `RUNS_DIR/submissions.csv` (its run, iteration, ensemble, val PSNR, expected test
# range, sha256); after uploading, record what CodaLab gave it with
# `python -m facesr submissions --score ROW_OR_ZIP PSNR`: the hand-in's Readme then names the zip with its score,
# and your own val/test pairs join the published ones in every expected test range.

# %%
from facesr.inference.predict import load_generator
from facesr.report.steps import make_submission
from facesr.report.tables import best_tta, submission_run
BEST = submission_run(PSNR_TABLE)  # every config of this notebook fits the limit
BEST_TTA = best_tta(PSNR_TABLE, BEST)
NET_G = load_generator(STAGES[BEST], trust=TRUST_CHECKPOINT)
ZIP = make_submission(NET_G, SETTINGS.data_root, STAGES[BEST], tta=BEST_TTA, edition=SETTINGS.edition,
                      psnr_table=PSNR_TABLE)  # logged in RUNS_DIR/submissions.csv

# %% [markdown]
# Next: notebook 06 puts these runs beside notebooks 03-05 (its default `MODELS` are your edition's report and
# in-budget configs; the `_l2` finishes join them) and makes the hand-in bundle of the best in-budget run.
