"""Several devices and hosts: Keras' DataParallel on the JAX backend, and the agreement of the processes on what to do.

    index = start_distribution(settings)  # before any model exists; 0 on the process that validates and writes files

`distribute="data_parallel"` splits each batch of `batch_size` windows over
every device of every process (the global batch: the same windows as on one
device); the weights are replicated. Several processes (one per host) join
through `keras.distribution.initialize`. Process 0 validates, evaluates,
generates and writes every file; the others train beside it and take the
same decisions from what process 0 measured (`from_process_0`, `agree`).
"""
import contextlib
import os

import numpy as np

from files import DataError

# environment variables that name several processes (Keras' and JAX's own); SLURM, Open MPI and the
# other clusters JAX detects by itself are used once num_processes is given
ENVIRONMENT = ("KERAS_DISTRIBUTION_JOB_ADDRESSES", "KERAS_DISTRIBUTION_NUM_PROCESSES", "JAX_COORDINATOR_ADDRESS")


def several_processes(settings, environ):
    """Whether the settings or the environment ask for a run over several processes."""
    return (bool(settings["coordinator_address"]) or settings["num_processes"] > 1 or settings["process_id"] > 0
            or any(environ.get(name) for name in ENVIRONMENT))


def start_distribution(settings):
    """Set up settings['distribute'] (and several processes if asked) before any model exists → this process's index."""
    several = several_processes(settings, os.environ)
    if settings["distribute"] == "none":
        if several:
            raise DataError("several processes (coordinator_address, num_processes, process_id or "
                            f"${' / $'.join(ENVIRONMENT)}) need --distribute=data_parallel")
        return 0
    import keras
    if keras.backend.backend() != "jax":
        raise DataError(f"--distribute={settings['distribute']} needs the JAX backend (Keras' distribution API runs "
                        f"on JAX only), not {keras.backend.backend()}: set KERAS_BACKEND=jax")
    if settings["process_id"] < -1 or 0 < settings["num_processes"] <= settings["process_id"]:
        raise DataError(f"process_id must be -1 (from the environment) or 0 to num_processes - 1, "
                        f"not {settings['process_id']}")
    import jax
    if several:
        try:
            keras.distribution.initialize(settings["coordinator_address"] or None, settings["num_processes"] or None,
                                          None if settings["process_id"] < 0 else settings["process_id"])
        except (ValueError, TypeError, RuntimeError) as err:
            raise DataError(f"cannot join the other processes: {str(err)[:300]}") from None
    devices = jax.device_count()
    if settings["batch_size"] % devices:
        raise DataError(f"batch_size {settings['batch_size']} does not split evenly over {devices} devices: "
                        f"use a multiple of {devices}")
    keras.distribution.set_distribution(keras.distribution.DataParallel(auto_shard_dataset=False))
    print(f"data parallel: {devices} devices in {jax.process_count()} process(es), this is process "
          f"{jax.process_index()}; each batch of {settings['batch_size']} windows is split "
          f"{settings['batch_size'] // devices} per device")
    return jax.process_index()


def process_count_and_index():
    """(processes in the run, this one's index): (1, 0) unless a distribution is set."""
    import keras
    if keras.distribution.distribution() is None:
        return 1, 0
    import jax
    return jax.process_count(), jax.process_index()


def local_rows(batch_size):
    """The rows of each global batch that this process feeds → slice (every row when it is the only process)."""
    count, index = process_count_and_index()
    share = batch_size // count
    return slice(index * share, (index + 1) * share)


def from_process_0(compute):
    """compute() run on process 0 only → its float, bit for bit, on every process (a collective: all must call)."""
    count, index = process_count_and_index()
    if count == 1:
        return float(compute())
    from jax.experimental import multihost_utils
    bits = np.array([compute() if index == 0 else 0.0], np.float64).view(np.uint32)  # exact without jax's x64
    return float(np.asarray(multihost_utils.broadcast_one_to_all(bits)).view(np.float64)[0])


def agree(choice, choices):
    """This process's choice → the latest of choices that any process chose, the same on every process (a collective)."""
    count, _ = process_count_and_index()
    if count == 1:
        return choice
    from jax.experimental import multihost_utils
    codes = multihost_utils.process_allgather(np.int32(choices.index(choice)))
    return choices[int(np.max(codes))]


@contextlib.contextmanager
def alone():
    """While active no distribution is set, so that process 0 can save or read a model by itself (saving creates
    variables, and creating a distributed one is a step every process must take)."""
    import keras
    distribution = keras.distribution.distribution()
    keras.distribution.set_distribution(None)
    try:
        yield
    finally:
        keras.distribution.set_distribution(distribution)


def load_weights(model, path):
    """The weights of the model file at path, which process 0 reads, into the model on every process (a collective)."""
    count, index = process_count_and_index()
    if count == 1:
        model.load_weights(path)
        return
    import keras
    from jax.experimental import multihost_utils
    weights = model.get_weights()  # the others' stand-ins, of the right shapes
    if index == 0:
        with alone():
            weights = keras.saving.load_model(path, compile=False).get_weights()
    model.set_weights(multihost_utils.broadcast_one_to_all(weights))


def wait_for_all():
    """Return once every process has called this: the others wait while process 0 evaluates and writes, for a
    process that ends early would wait only 5 minutes for the rest at JAX's shutdown, then abort them all."""
    if process_count_and_index()[0] > 1:
        from jax.experimental import multihost_utils
        multihost_utils.sync_global_devices("classically_deep: run finished")


def describe_weights(model):
    """How the model's weights lie on this process's devices → a sentence, checking that the copies are identical."""
    shards = [variable.value.addressable_shards for variable in model.variables]
    devices = {len(variable.value.sharding.device_set) for variable in model.variables}
    same = all(np.array_equal(np.asarray(shard.data), np.asarray(parts[0].data)) for parts in shards for shard in parts)
    return (f"weights: {len(shards)} variables, each on {', '.join(map(str, sorted(devices)))} device(s), "
            f"{min(map(len, shards))} copies here, {'identical' if same else 'DIFFERENT'}")
