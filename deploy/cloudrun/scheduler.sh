#!/usr/bin/env bash
# Creates (or updates) the Cloud Scheduler job that runs the quotewatch-maintenance Cloud Run
# job every night at 03:15 UTC, by calling the Jobs API's :run endpoint with an OAuth token of
# the quotewatch-scheduler service account (which needs roles/run.invoker on the job).
#
#   PROJECT_ID=... REGION=... deploy/cloudrun/scheduler.sh
#
# SCHEDULE (cron, default "15 3 * * *") and JOB (default quotewatch-maintenance) may be set too.
set -euo pipefail
: "${PROJECT_ID:?set PROJECT_ID}" "${REGION:?set REGION}"
job="${JOB:-quotewatch-maintenance}"
schedule="${SCHEDULE:-15 3 * * *}"
uri="https://${REGION}-run.googleapis.com/apis/run.googleapis.com/v1/namespaces/${PROJECT_ID}/jobs/${job}:run"
sa="quotewatch-scheduler@${PROJECT_ID}.iam.gserviceaccount.com"

# `create` the first time, `update` afterwards: the script can be re-run.
if gcloud scheduler jobs describe "${job}-nightly" --project "$PROJECT_ID" --location "$REGION" \
    >/dev/null 2>&1; then
    action=update
else
    action=create
fi
gcloud scheduler jobs "$action" http "${job}-nightly" \
    --project "$PROJECT_ID" \
    --location "$REGION" \
    --schedule "$schedule" \
    --time-zone "Etc/UTC" \
    --http-method POST \
    --uri "$uri" \
    --oauth-service-account-email "$sa" \
    --oauth-token-scope "https://www.googleapis.com/auth/cloud-platform"
