"""Airflow DAG: the monthly retain run, one task, through the `retain` command.

Copy this file into Airflow's ``dags/`` folder and set the variables at the top. The task runs
``retain run`` for the month that just ended; ``retain run`` resumes by itself, so Airflow's
retries pick up after the step that failed. Exit code 2 (an act-level monitoring alert, with
every output written) fails the task on purpose, so the on-call person is paged; 1 is a failed
step. Retraining is not scheduled here: it stays a decision (``retain train`` and
``retain promote``). Airflow is not a dependency of retain; nothing in the project imports this.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from airflow import DAG
from airflow.operators.bash import BashOperator

RETAIN = "/opt/retain/.venv/bin/retain"  # the installed command
WORKDIR = "/opt/retain"  # holds retain.toml and mlruns/ (or set MLFLOW_TRACKING_URI)
RUNS_DIR = "/data/retain/runs"
WAREHOUSE = "/data/warehouse"  # or postgres://user@host/db

with DAG(
    dag_id="retain_monthly",
    description="validate → features → score → lists and report → monitor",
    schedule="0 6 3 * *",  # 06:00 on the 3rd: the warehouse has loaded the month that ended
    start_date=datetime(2025, 1, 1),
    catchup=False,
    max_active_runs=1,
    default_args={"retries": 2, "retry_delay": timedelta(minutes=30)},
    tags=["retain"],
) as dag:
    BashOperator(
        task_id="retain_run",
        # the cutoff is the last day of the month before the run's logical date
        bash_command=(
            f"cd {WORKDIR} && {RETAIN} run"
            " --cutoff {{ (data_interval_end.replace(day=1) - macros.timedelta(days=1)).strftime('%Y-%m-%d') }}"  # noqa: E501
            f" --runs-dir {RUNS_DIR} --warehouse {WAREHOUSE}"
            f" --json {RUNS_DIR}/last_run.json"
        ),
        execution_timeout=timedelta(hours=2),
    )
