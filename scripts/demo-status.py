"""One line of the demo's live view, read from moto with boto3 (installed with moto).

Usage: demo-status.py SENT_FILE STARTED_AT  (environment: AWS_ENDPOINT_URL and credentials)
Prints: elapsed, sent, backlog, in flight, DLQ, in service, desired, backlog per instance, and
the drain rate since the previous call (kept in target/demo/status.prev).
"""
import os
import sys
import time

import boto3

sent_file, started = sys.argv[1], float(sys.argv[2])
region = os.environ.get("AWS_REGION", "us-east-1")
sqs = boto3.client("sqs", region_name=region)
asg = boto3.client("autoscaling", region_name=region)


def depth(name):
    url = sqs.get_queue_url(QueueName=name)["QueueUrl"]
    a = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
    return int(a["ApproximateNumberOfMessages"]), int(a["ApproximateNumberOfMessagesNotVisible"])


visible, in_flight = depth("banking-transactions")
dlq, _ = depth("banking-transactions-dlq")
group = asg.describe_auto_scaling_groups(AutoScalingGroupNames=["banking-workers"])["AutoScalingGroups"][0]
in_service = sum(1 for i in group["Instances"] if i["LifecycleState"] == "InService")
desired = group["DesiredCapacity"]
try:
    with open(sent_file) as f:
        lines = [line.split() for line in f]
    # One "202" per transaction the API accepted; "queued N" per batch put on the queue directly.
    sent = sum(1 for w in lines if w == ["202"])
    sent += sum(int(w[1]) for w in lines if len(w) == 2 and w[0] == "queued")
except FileNotFoundError:
    sent = 0
done = sent - visible - in_flight
now = time.time()
prev_path = os.path.join(os.path.dirname(sent_file), "status.prev")
rate = 0.0
if os.path.exists(prev_path):
    with open(prev_path) as f:
        t0, d0 = (float(x) for x in f.read().split())
    if now > t0:
        rate = max(0.0, (done - d0) / (now - t0))
with open(prev_path, "w") as f:
    f.write(f"{now} {done}")
per_instance = visible / max(in_service, 1)
bar = "#" * min(60, visible // 10)
print(
    f"{now - started:5.0f}s  sent {sent:4d}  backlog {visible:4d}  in flight {in_flight:3d}  "
    f"DLQ {dlq:2d}  in service {in_service:2d}  desired {desired:2d}  "
    f"backlog/instance {per_instance:6.1f}  processed {rate:5.1f}/s  {bar}",
    flush=True,
)
