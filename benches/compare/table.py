"""Prints the side-by-side table (Markdown) from two daemon_scale JSON reports.

    python3 benches/compare/table.py target/perf/compare-otad.json target/perf/compare-zigpy.json
"""

import json
import sys

ROWS = [
    # (label, key, format, lower is better; None: no ratio)
    ("devices upgraded and verified", "upgraded_verified", "{:.0f}", None),
    ("wall time, first block to last device done (s)", "wall_s_first_block_to_done", "{:.2f}", True),
    ("wall time, host start to last device done (s)", "wall_s_host_start_to_done", "{:.2f}", True),
    ("Image Block Requests served", "block_requests", "{:.0f}", None),
    ("blocks/s", "blocks_per_s", "{:.0f}", False),
    ("host CPU during the transfer (s)", "cpu_s_transfer", "{:.2f}", True),
    ("host CPU incl. start-up (s)", "cpu_s_total", "{:.2f}", True),
    ("host CPU s per MB served", "cpu_s_per_mb_served", "{:.3f}", True),
    ("host CPU per block (us)", "cpu_us_per_block", "{:.0f}", True),
    ("of which in the kernel (s)", "cpu_system_s_transfer", "{:.2f}", True),
    ("host context switches per block", "context_switches_per_block", "{:.2f}", True),
    ("peak RSS, VmHWM (MiB)", "vm_hwm_kib", "{:.1f}", True),
    ("request latency p50 (us)", "latency_us_p50", "{:.0f}", True),
    ("request latency p99 (us)", "latency_us_p99", "{:.0f}", True),
    ("request latency max (us)", "latency_us_max", "{:.0f}", True),
    ("latency p50, request arrived with no coordinator command pending (us)", "latency_ncp_idle_us_p50", "{:.0f}", True),
    ("latency p99, same (us)", "latency_ncp_idle_us_p99", "{:.0f}", True),
    ("answers measured inside the daemon", "inside_serial_us_count", "{:.0f}", None),
    ("inside: request read -> answer ready (host work), p50 (us)", "inside_host_us_p50", "{:.0f}", None),
    ("inside: same, p99 (us)", "inside_host_us_p99", "{:.0f}", None),
    ("inside: request read -> unicast written, p50 (us)", "inside_serial_us_p50", "{:.0f}", None),
    ("inside: same, p99 (us)", "inside_serial_us_p99", "{:.0f}", None),
    ("inside: same, max (us)", "inside_serial_us_max", "{:.0f}", None),
    ("sends refused by the coordinator (queue full)", "sends_refused_by_ncp", "{:.0f}", None),
    ("device retries (timeouts)", "device_retries", "{:.0f}", None),
]


def main() -> None:
    ours = json.load(open(sys.argv[1]))
    theirs = json.load(open(sys.argv[2]))
    print(
        f"{ours['devices']} devices, {ours['ota_file_bytes']} byte OTA file, "
        f"{ours['max_data']}-byte blocks, radio delay {ours['radio_delay_ms']} ms, "
        f"ASH frames lost: {ours.get('loss_from_host', 0):.0%} from the host, "
        f"{ours.get('loss_to_host', 0):.0%} to the host; "
        f"load average {ours['load_average_start']} / {theirs['load_average_start']}"
    )
    print()
    reference = "zigpy + zigpy-znp" if theirs.get("protocol") == "znp" else "zigpy + bellows"
    print(f"| | zigbee-otad | {reference} | zigbee-otad better by |")
    print("|---|---:|---:|---:|")
    for label, key, fmt, lower_is_better in ROWS:
        if key not in ours:
            continue
        if key not in theirs:
            # Measured inside zigbee-otad only.
            print(f"| {label} | {fmt.format(float(ours[key]))} | n/a | - |")
            continue
        a, b = float(ours[key]), float(theirs[key])
        if key == "vm_hwm_kib":
            a, b = a / 1024, b / 1024
        if lower_is_better is None or not a or not b:
            ratio = "-"
        elif lower_is_better:
            ratio = f"{b / a:.1f}x"
        else:
            ratio = f"{a / b:.1f}x"
        print(f"| {label} | {fmt.format(a)} | {fmt.format(b)} | {ratio} |")


if __name__ == "__main__":
    main()
