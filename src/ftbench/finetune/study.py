"""The 2023 study's four training runs, recorded as inputs and priced by ftbench's own cost code.

The study reported what each fine-tune cost: CodeLlama 34B + LoRA on one A40 at $0.475/GPU-hour for about
7 h (SQL, $3.32) and 9 h (ViGGO, $4.27); gpt-3.5-turbo-0613 fine-tunes of 1,498,750 (SQL, $11.99) and
3,256,250 (ViGGO, $26.05) trained tokens. Here only the *inputs* are written down; the dollars come from
:func:`~ftbench.pricing.gpu_cost` and :func:`~ftbench.pricing.training_cost` with the dated
price table, and a test checks that they give the study's figures.

Cents. 7 h × $0.475 is exactly $3.325 and 9 h × $0.475 exactly $4.275, yet the study wrote $3.32 and $4.27:
it dropped the half cent. Which way it did so cannot be known from the figures, since two rules give them:

- truncating the exact amount to whole cents (3.325 -> 3.32, 4.275 -> 4.27);
- Python's ``round(7 * 0.475, 2)``: the binary double nearest 0.475 is 0.47499999999999997…, so the float
  products are 3.3249999999999997 and 4.2749999999999995 and round down. This is an accident of
  representation, not a rule: ``round(3.325, 2)`` is 3.33 (that double lies just *above* 3.325).

Rounding the exact amounts half-up would give $3.33 and $4.28, half-to-even $3.32 and $4.28. ftbench presents
amounts truncated to cents (:func:`to_cents`), because that gives the study's figures from exact and float
arithmetic alike. The OpenAI amounts are whole cents already, so the rule does not touch them.

``python -m ftbench.finetune.study`` prints the Markdown table that ``docs/reproduction.md`` shows.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_DOWN, Decimal

from ftbench.pricing import A40_PRICE_PER_HOUR, gpu_cost, price_for, training_cost

LORA_NAME = "CodeLlama-34B + LoRA"
OPENAI_NAME = "GPT-3.5 fine-tuned"
_CENT = Decimal("0.01")


@dataclass(frozen=True)
class StudyLoraRun:
    """A LoRA run as the study reported it: wall hours on some GPUs at a $/GPU-hour price."""

    task: str
    wall_hours: float
    gpu_name: str
    price_per_gpu_hour: float
    reported_usd: Decimal
    gpu_count: int = 1


@dataclass(frozen=True)
class StudyOpenAIRun:
    """An OpenAI fine-tune as the study reported it: the job's ``trained_tokens`` and its base model."""

    task: str
    model: str
    trained_tokens: int
    reported_usd: Decimal


@dataclass(frozen=True)
class RunCost:
    """One run priced by ftbench, beside the study's own figure."""

    task: str
    run: str
    inputs: str
    usd: Decimal  # computed, truncated to cents
    reported_usd: Decimal


@dataclass(frozen=True)
class TaskCosts:
    """Both runs of one task; ``ratio``: the OpenAI run's cost over the LoRA run's, in cents as shown."""

    lora: RunCost
    openai: RunCost

    @property
    def ratio(self) -> Decimal:
        return self.openai.usd / self.lora.usd


#: The study's runs (Aug–Sep 2023): one A40 at $0.475/h; gpt-3.5-turbo-0613 at its launch price.
LORA_RUNS = (
    StudyLoraRun("spider_sql", 7, "NVIDIA A40", A40_PRICE_PER_HOUR, Decimal("3.32")),
    StudyLoraRun("viggo", 9, "NVIDIA A40", A40_PRICE_PER_HOUR, Decimal("4.27")),
)
OPENAI_RUNS = (
    StudyOpenAIRun("spider_sql", "gpt-3.5-turbo-0613", 1_498_750, Decimal("11.99")),
    StudyOpenAIRun("viggo", "gpt-3.5-turbo-0613", 3_256_250, Decimal("26.05")),
)


def to_cents(usd: float) -> Decimal:
    """``usd`` truncated to whole cents (see the module docstring for why truncation)."""
    return Decimal(repr(usd)).quantize(_CENT, rounding=ROUND_DOWN)


def price_lora_run(run: StudyLoraRun) -> RunCost:
    cost = gpu_cost(run.wall_hours * 3600 / run.gpu_count, run.gpu_count, run.price_per_gpu_hour, run.gpu_name)
    inputs = (f"{cost.gpu_hours:g} GPU-h ({run.gpu_count} × {run.gpu_name}) × "
              f"${run.price_per_gpu_hour:g}/GPU-h")
    return RunCost(run.task, LORA_NAME, inputs, to_cents(cost.cost_usd), run.reported_usd)


def price_openai_run(run: StudyOpenAIRun) -> RunCost:
    cost = training_cost(run.trained_tokens, price_for(run.model))
    return RunCost(run.task, OPENAI_NAME, cost.basis, to_cents(cost.usd), run.reported_usd)


def study_costs() -> list[TaskCosts]:
    """The study's two tasks, each with its LoRA and OpenAI run priced."""
    openai_by_task = {run.task: run for run in OPENAI_RUNS}
    return [TaskCosts(price_lora_run(run), price_openai_run(openai_by_task[run.task])) for run in LORA_RUNS]


def _row(cost: RunCost, ratio: str) -> str:
    return f"| `{cost.task}` | {cost.run} | {cost.inputs} | ${cost.usd} | ${cost.reported_usd} | {ratio} |"


def cost_table(tasks: list[TaskCosts] | None = None) -> str:
    """A Markdown table: task, run, inputs, computed $, the study's $, OpenAI ÷ LoRA."""
    lines = ["| task | run | inputs | computed $ | study's $ | OpenAI ÷ LoRA |",
             "| --- | --- | --- | ---: | ---: | ---: |"]
    for task in study_costs() if tasks is None else tasks:
        lines += [_row(task.lora, "—"), _row(task.openai, f"{task.ratio:.2f}×")]
    return "\n".join(lines)


def main() -> None:
    print(cost_table())


if __name__ == "__main__":
    main()
