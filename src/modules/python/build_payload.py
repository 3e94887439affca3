# Builds the AnsiballZ payload of one Ansible module with ansible-core's own builder, for kiln.
# Reads one JSON request on stdin: {"name", "collections", "library", "collections_path"}.
# Prints one JSON line: {"fqcn", "payload", "ansible_version"} (the payload's arguments are a
# mark, KILN_MODULE_PARAMS, that kiln replaces per task), or {"error"}.
import json
import os
import sys

request = json.load(sys.stdin)
# ansible-core reads its configuration when first imported: paths go in through it.
os.environ["ANSIBLE_LIBRARY"] = os.pathsep.join(request["library"])
os.environ["ANSIBLE_COLLECTIONS_PATH"] = os.pathsep.join(request["collections_path"])


def reply(**fields):
    sys.stdout.write(json.dumps(fields) + "\n")
    sys.exit(0)


try:
    from ansible.executor.module_common import modify_module
    from ansible.parsing.dataloader import DataLoader
    from ansible.plugins.loader import init_plugin_loader, module_loader
    from ansible.template import Templar
except ImportError as e:
    reply(error=f"ansible-core is not importable by {sys.executable}: {e}")

init_plugin_loader(request["collections_path"])
collections = list(request["collections"])
if "ansible.legacy" not in collections:
    collections.append("ansible.legacy")
found = module_loader.find_plugin_with_context(
    request["name"], mod_type=".py", collection_list=collections
)
if not found.resolved:
    reply(error=f"couldn't resolve module '{request['name']}'")

with open(found.plugin_resolved_path, encoding="utf-8", errors="replace") as source:
    if "def main" not in source.read():
        # fetch, pause, add_host, … exist only as documentation here: ansible-core carries
        # them out on the controller with an action plugin.
        reply(error=f"'{request['name']}' is carried out by an Ansible action plugin on the controller, which kiln does not run")

try:
    built = modify_module(
        module_name=found.plugin_resolved_name.rsplit(".", 1)[-1],
        module_path=found.plugin_resolved_path,
        module_args={},
        templar=Templar(loader=DataLoader()),
        # kiln runs the interpreter it chose itself; the shebang only needs to be valid.
        task_vars={"ansible_python_interpreter": "/usr/bin/python3"},
        module_compression="ZIP_DEFLATED",
    )
except Exception as e:  # ansible-core's own message (a module_utils import it cannot find, …)
    reply(error=f"building module '{request['name']}' failed: {e}")
if built.module_style != "new":
    reply(error=f"module '{request['name']}' is an old-style or binary module, which kiln does not run")
payload = built.b_module_data.decode()
# The arguments change with every task: leave a mark where they go (the payload is cached).
empty_params = "params=%r," % json.dumps({"ANSIBLE_MODULE_ARGS": {}})
if payload.count(empty_params) != 1:
    reply(error="ansible-core's payload has an unexpected shape (no single params line)")
from ansible.release import __version__

reply(
    fqcn=found.resolved_fqcn,
    payload=payload.replace(empty_params, "params=KILN_MODULE_PARAMS,"),
    ansible_version=__version__,
)
