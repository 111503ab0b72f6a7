"""Debian's jupyter_kernel_test suite against kumo's kernel.

Run by TestJupyterKernelConformance with the kernelspec installed in a
JUPYTER_PATH of the test's own. Features kumo has no counterpart for are
left unset (their tests skip): the pager payload and clear_output.
"""
import unittest

import jupyter_kernel_test


class KumoKernelTests(jupyter_kernel_test.KernelTests):
    kernel_name = "kumo"
    language_name = "starlark"
    file_extension = ".star"

    code_hello_world = 'print("hello, world")'
    # kumo prints to stderr what a node writes there: a local node's.
    code_stderr = 'n = unit_group("conformance").create_unit("n", spec("local", "small")).nodes()[0]\nssh_run(n, "echo oops >&2")'

    completion_samples = [
        {"text": "unit_gro", "matches": {"unit_group"}},
        {"text": "ssh_r", "matches": {"ssh_run"}},
        {"text": "pri", "matches": {"print"}},
    ]
    complete_code_samples = ["x = 1", "print(x)", "for i in range(3):\n    print(i)\n"]
    incomplete_code_samples = ["for i in range(3):", "x = [1,", "def f():\n    return 1"]
    invalid_code_samples = ["x = = 1", "1 +* 2"]

    code_generate_error = "fail('on purpose')"

    code_execute_result = [
        {"code": "6*7", "result": "42"},
        {"code": '"kumo" + "!"', "result": '"kumo!"'},
    ]
    # kumo's display: whether a cell replayed or ran live, and why.
    code_display_data = [{"code": "y = 2", "mime": "text/plain"}]

    code_history_pattern = "6*"
    supported_history_operations = ("tail", "range", "search")

    code_inspect_sample = "ssh_run"


if __name__ == "__main__":
    unittest.main()
