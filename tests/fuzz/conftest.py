def pytest_configure(config):
    config.addinivalue_line("markers", "fuzz: the structure-aware fuzzer (tests/fuzz); select with -m fuzz")
