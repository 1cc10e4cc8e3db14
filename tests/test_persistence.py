"""Pickle and joblib round trips of a fitted DivideMixClassifier."""

import io
import pickle

import joblib
import numpy as np
import pytest
import torch
from sklearn.datasets import make_blobs
from skorch.exceptions import DeviceWarning

from sklearn_dividemix import DivideMixClassifier

# Tiny, easy data makes one-sided divisions; DivisionWarning is tested in
# test_classifier.py.
pytestmark = pytest.mark.filterwarnings("ignore::sklearn_dividemix.DivisionWarning")


@pytest.fixture(scope="module")
def data():
    X, y = make_blobs(2000, n_features=64, centers=3, random_state=0)
    return X.astype(np.float32), y


@pytest.fixture(scope="module")
def fitted(data):
    clf = DivideMixClassifier(
        max_epochs=2,
        warmup_epochs=1,
        batch_size=128,
        lr=0.1,
        random_state=0,
        module__hidden_units=16,
    )
    return clf.fit(*data)


def _pickle_round_trip(clf, tmp_path):
    return pickle.loads(pickle.dumps(clf))


def _joblib_round_trip(clf, tmp_path):
    joblib.dump(clf, tmp_path / "clf.joblib")
    return joblib.load(tmp_path / "clf.joblib")


@pytest.mark.parametrize("round_trip", [_pickle_round_trip, _joblib_round_trip])
def test_round_trip_predicts_identically(fitted, data, tmp_path, round_trip):
    X, _ = data
    loaded = round_trip(fitted, tmp_path)
    assert loaded is not fitted
    np.testing.assert_array_equal(loaded.predict_proba(X), fitted.predict_proba(X))
    np.testing.assert_array_equal(loaded.predict(X), fitted.predict(X))
    np.testing.assert_array_equal(loaded.clean_proba_, fitted.clean_proba_)
    np.testing.assert_array_equal(loaded.classes_, fitted.classes_)
    assert loaded.get_params()["module__hidden_units"] == 16
    assert loaded.history_[:, "loss_net1"] == fitted.history_[:, "loss_net1"]
    for net in (loaded.net1_, loaded.net2_):
        assert net.device == "cpu"
        assert all(p.device.type == "cpu" for p in net.module_.parameters())


def test_cuda_pickle_loads_on_cpu(fitted, data, monkeypatch):
    """A pickle whose nets say ``device='cuda'`` loads on a CPU-only machine.

    Covered: skorch's mechanism. Each net's ``__setstate__`` asks
    ``skorch.utils.get_map_location`` where to load its module, optimizer and
    criterion; with CUDA unavailable it warns and maps them to the CPU, and
    sets the net's ``device`` to 'cpu', which is where ``predict_proba`` then
    sends its input. The pickle is made here by setting the nets' ``device``
    to 'cuda' before pickling, as a CUDA fit would have left it.

    Not covered (no GPU on the test machines): tensors whose storage really is
    on CUDA in the pickle, i.e. that ``torch.load``'s ``map_location`` moves
    them; that part is torch's and skorch's own, tested by them.
    """
    X, _ = data
    cuda_fitted = pickle.loads(pickle.dumps(fitted))
    for net in (cuda_fitted.net1_, cuda_fitted.net2_):
        net.device = "cuda"
    cuda_fitted.device_ = "cuda"
    blob = pickle.dumps(cuda_fitted)

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.warns(DeviceWarning) as record:
        loaded = pickle.loads(blob)
    messages = [str(w.message) for w in record]
    assert any("no CUDA devices are available" in m for m in messages)
    assert any("Setting self.device = cpu" in m for m in messages)
    for net in (loaded.net1_, loaded.net2_):
        assert torch.device(net.device).type == "cpu"
        assert all(p.device.type == "cpu" for p in net.module_.parameters())
    # device_ records where the nets were trained, not where they are now
    assert loaded.device_ == "cuda"
    np.testing.assert_array_equal(loaded.predict_proba(X), fitted.predict_proba(X))


class _RecordingPickler(pickle.Pickler):
    """Records the type (and array shape) of everything it pickles."""

    def __init__(self, file):
        super().__init__(file)
        self.types = set()
        self.array_shapes = []

    def reducer_override(self, obj):
        self.types.add(type(obj))
        if isinstance(obj, np.ndarray):
            self.array_shapes.append(obj.shape)
        return NotImplemented


def test_pickle_holds_nothing_that_only_exists_during_training(fitted, data):
    """No training tensors, random streams, loss windows or progress bars.

    The nets' modules, optimizers and criteria are pickled by skorch into an
    opaque byte string; everything else passes through the recording pickler.
    """
    from tqdm import tqdm

    from sklearn_dividemix._division import Division, LossWindow
    from sklearn_dividemix._epochs import EpochReporter
    from sklearn_dividemix._training import TrainingData

    X, _ = data
    buffer = io.BytesIO()
    pickler = _RecordingPickler(buffer)
    pickler.dump(fitted)
    training_only = {
        TrainingData,
        torch.Tensor,
        torch.nn.Parameter,
        torch.Generator,
        np.random.RandomState,
        LossWindow,
        Division,
        EpochReporter,
        tqdm,
    }
    assert not training_only & pickler.types
    assert not any(type_.__module__.startswith("tqdm") for type_ in pickler.types)
    # no copy of X in any form, and far less than X in size
    assert X.shape not in pickler.array_shapes
    assert all(np.prod(shape) < X.size for shape in pickler.array_shapes)
    assert len(buffer.getvalue()) < X.nbytes / 4
    fitted_attributes = {k for k in vars(fitted) if k.endswith("_")}
    assert {"net1_", "net2_", "history_", "clean_proba_"} <= fitted_attributes
    for net in (fitted.net1_, fitted.net2_):
        # skorch would use these only inside its own fit, which never runs
        assert net.init_context_ is None
        assert net.grad_scaler_ is None
