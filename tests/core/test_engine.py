"""The engine: Dask settings that cannot work are refused before any step starts, fast and naming the fix."""

import socket
import sys
import time

import pytest

from mlhelpers.core.clusterhealth import sort_log_lines
from mlhelpers.core.engine import EngineError, check_engine_params, open_engine, parse_memory, worker_count
from mlhelpers.core.params import validate_params


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_pandas_needs_nothing_and_opens_nothing():
    check_engine_params("pandas", dask_scheduler="nonsense", dask_worker_memory="lots")
    engine = open_engine(validate_params({}, check_data=False))
    assert not engine.is_dask and engine.close() is None and "pandas" in engine.summary()["value"].iloc[0]


def test_an_unreachable_scheduler_is_refused_fast_with_its_address():
    address = f"tcp://127.0.0.1:{_closed_port()}"
    started = time.perf_counter()
    with pytest.raises(EngineError, match=f"dask_scheduler: cannot reach {address} .*start the scheduler"):
        check_engine_params("dask", dask_scheduler=address)
    assert time.perf_counter() - started < 5


@pytest.mark.parametrize("address", ["10.0.0.5", "http://10.0.0.5:8786", "tcp://:8786"])
def test_a_scheduler_address_needs_host_and_port(address):
    with pytest.raises(EngineError, match="is not a scheduler address; write it as tcp://host:port"):
        check_engine_params("dask", dask_scheduler=address)


def test_a_scheduler_without_workers_is_refused():
    from distributed import LocalCluster

    with LocalCluster(n_workers=0, processes=False, protocol="tcp", dashboard_address=":0") as cluster:
        with pytest.raises(EngineError, match=f"the scheduler at {cluster.scheduler_address} has no workers; start some"):
            check_engine_params("dask", dask_scheduler=cluster.scheduler_address)


@pytest.mark.parametrize("memory, message", [
    ("lots", "is not a memory size"), ("100MB", "too little for a worker"),
    ("100TB", "more than this machine's")])
def test_impossible_worker_memory_is_refused(memory, message):
    with pytest.raises(EngineError, match=f"dask_worker_memory: '{memory}' .*{message}"):
        check_engine_params("dask", dask_worker_memory=memory)


def test_memory_sizes_and_worker_counts():
    assert parse_memory("2GB") == 2_000_000_000 and parse_memory("1 GiB") == 2**30
    assert worker_count(3) == 3 and worker_count(-1) >= 1


def test_params_name_the_key_of_a_refused_engine_setting(tmp_path, credit):
    address = f"tcp://127.0.0.1:{_closed_port()}"
    with pytest.raises(ValueError, match=f"key 'dask_scheduler': cannot reach {address}"):
        validate_params({"engine": "dask", "dask_scheduler": address})
    with pytest.raises(ValueError, match="key 'dask_workers': must be -1"):
        validate_params({"engine": "dask", "dask_workers": 0})
    with pytest.raises(ValueError, match="key 'group_column': engine: dask holds out whole partitions"):
        validate_params({"engine": "dask", "group_column": "Job"})
    with pytest.raises(ValueError, match="key 'engine': Input should be 'pandas' or 'dask'"):
        validate_params({"engine": "spark"})
    lines = tmp_path / "credit.jsonl"
    credit.head(20).to_json(lines, orient="records", lines=True)
    with pytest.raises(ValueError, match="key 'data_path': engine: dask reads Parquet or CSV files .*not credit.jsonl"):
        validate_params({"engine": "dask", "data_path": str(lines)})


def test_dask_not_installed_is_refused_with_the_install_command(monkeypatch):
    # a None entry makes `import distributed` fail as if it were not installed (in this process: a subprocess
    # importing pandas took 12 s of the suite under load)
    monkeypatch.setitem(sys.modules, "distributed", None)
    with pytest.raises(EngineError, match=r"engine: dask needs Dask, which is not installed .*pip install -e '\.\[dask\]'"):
        check_engine_params("dask")


def test_a_port_that_speaks_another_protocol_is_refused_with_its_address():
    # a web server where the scheduler should be: Dask read its reply as a 3 EiB message and `mlh validate`
    # ended in a MemoryError traceback (exit 1), then waited 20 s more while the half-built Client closed
    import http.server
    import threading

    server = http.server.HTTPServer(("127.0.0.1", 0), http.server.BaseHTTPRequestHandler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    address = f"tcp://127.0.0.1:{server.server_address[1]}"
    try:
        started = time.perf_counter()
        with pytest.raises(EngineError, match=f"dask_scheduler: {address} does not answer as a Dask scheduler"):
            check_engine_params("dask", dask_scheduler=address)
        assert time.perf_counter() - started < 30
    finally:
        server.shutdown()


def test_the_health_check_tells_dask_back_pressure_from_trouble():
    # the messages as distributed 2025's worker, memory manager and nanny write them; CI once failed a run for a
    # warning it could not show: back-pressure the worker recovered from is counted apart, the rest flagged
    worker, nanny = "tcp://127.0.0.1:40001", "tcp://127.0.0.1:40002"
    logs = [{worker: [("INFO", "Start worker at: tcp://127.0.0.1:40001"),
                      ("WARNING", "Worker is at 81% memory usage. Pausing worker.  Process memory: 610.2 MiB -- "
                                  "Worker memory limit: 715.3 MiB"),
                      ("WARNING", "Worker is at 52% memory usage. Resuming worker. Process memory: 390.1 MiB -- "
                                  "Worker memory limit: 715.3 MiB"),
                      ("WARNING", "Unmanaged memory use is high. This may indicate a memory leak or the memory may "
                                  "not be released to the OS; see https://distributed.dask.org/en/latest/"
                                  "worker-memory.html -- Unmanaged memory: 450 MiB -- Worker memory limit: 715.3 MiB"),
                      ("WARNING", "Run Failed\nFunction: peak\nargs: ()\nkwargs: {}\n"),
                      ("INFO", "Event loop was unresponsive in Worker for 3.21s.")]},
            {nanny: [("WARNING", f"Worker {worker} (pid=4242) exceeded 95% memory budget. Restarting..."),
                     ("INFO", "Closing Nanny at 'tcp://127.0.0.1:40002'. Reason: nanny-close")]}]
    flagged, pressure = sort_log_lines(logs)
    assert flagged == [f"{worker}: Run Failed\nFunction: peak\nargs: ()\nkwargs: {{}}",
                       f"{nanny}: Worker {worker} (pid=4242) exceeded 95% memory budget. Restarting..."]
    assert [line.split(": ", 1)[1].split(".")[0] for line in pressure] == [
        "Worker is at 81% memory usage", "Worker is at 52% memory usage", "Unmanaged memory use is high"]


def test_a_port_that_answers_in_another_protocol_says_so_not_memory_error():
    # a proxy that answers every connection at once (as this machine's outbound one does): Dask reads its first
    # bytes as the length of a message of exabytes and raises MemoryError, which the message named before
    import socketserver
    import threading

    class Replies(socketserver.BaseRequestHandler):
        def handle(self):
            self.request.sendall(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n")

    server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), Replies)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    address = f"tcp://127.0.0.1:{server.server_address[1]}"
    try:
        with pytest.raises(EngineError, match=f"{address} does not answer as a Dask scheduler \\(it accepts "
                                              "connections but speaks another protocol: a web server or a proxy\\?\\)"):
            check_engine_params("dask", dask_scheduler=address)
    finally:
        server.shutdown()
        server.server_close()
