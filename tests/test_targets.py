import pytest

from genviz.classes import ClassLookupError, imagenet
from genviz.classifiers import LayerLookupError, build_classifier
from genviz.targets import TargetError, parse_target


@pytest.fixture(scope="module")
def lite0():
    return build_classifier("efficientnet_lite0")


@pytest.fixture(scope="module")
def tiny():
    return build_classifier("tiny")


@pytest.mark.parametrize(
    "key,index",
    [
        ("mosque", 668),
        ("668", 668),
        ("n03788195", 668),
        ("pool table", 736),
        ("billiard table", 736),
        ("great white shark", 2),
        ("great_white_shark", 2),
        ("Great-White-Shark", 2),
        ("cardigan", 474),
        ("Cardigan", 264),
    ],
)
def test_class_lookup(key, index):
    assert imagenet().resolve(key) == index


def test_ambiguous_and_unknown_class_names():
    with pytest.raises(ClassLookupError, match="(?s)ambiguous.*class:134.*class:517"):
        imagenet().resolve("crane")
    with pytest.raises(ClassLookupError, match="ambiguous"):
        imagenet().resolve("CARDIGAN")
    with pytest.raises(ClassLookupError, match="did you mean.*mosque"):
        imagenet().resolve("mosk")
    with pytest.raises(ClassLookupError, match="out of range"):
        imagenet().resolve("1000")


def test_parse_class_targets(lite0):
    assert parse_target("class:mosque", lite0).classes == [668]
    obj = parse_target("0.7*class:crib+0.3*class:cradle", lite0)
    assert obj.classes == [516, 520]
    assert sorted(t.weight for t in obj.terms) == [0.3, 0.7]
    assert obj.penalize_others and obj.label == "0.7*class:crib+0.3*class:cradle"
    assert parse_target("class:ostrich+class:bullfrog", lite0).classes == [9, 30]


def test_parse_layer_targets(tiny):
    ch = parse_target("channel:relu2:3", tiny)
    assert ch.terms[0].index == ("channel", 3) and not ch.penalize_others
    assert parse_target("neuron:relu1:2:4:5", tiny).terms[0].index == ("neuron", 2, 4, 5)
    assert parse_target("neuron:relu1:2", tiny).terms[0].index == ("neuron", 2, None, None)
    assert parse_target("layer:relu3", tiny).terms[0].index == ("layer",)
    group = parse_target("channels:relu2:0,3-5", tiny)
    assert [t.index[1] for t in group.terms] == [0, 3, 4, 5]
    assert parse_target("channel:conv1:0", tiny).layers == ["conv1"]  # module paths work too


def test_bad_targets_have_clear_errors(tiny, lite0):
    with pytest.raises(LayerLookupError, match="Named layers: .*relu1"):
        parse_target("channel:relu9:1", tiny)
    with pytest.raises(TargetError, match="expected one of"):
        parse_target("mosque", lite0)
    with pytest.raises(TargetError, match="integer"):
        parse_target("channel:relu1:x", tiny)
    with pytest.raises(TargetError, match="empty"):
        parse_target("  ", tiny)
    with pytest.raises(ClassLookupError, match="did you mean"):
        parse_target("class:mosqe", lite0)


def test_vgg_layer_names_follow_the_seeds():
    from genviz.classifiers import vgg16

    clf = vgg16(pretrained=False)
    assert clf.resolve_layer("relu1_1") == "features.1"
    assert clf.resolve_layer("conv5_1") == clf.resolve_layer("relu5_1") == "features.25"
    assert clf.resolve_layer("pool5") == "features.30"
    assert clf.resolve_layer("fc7") == "classifier.4"
    assert clf.resolve_layer("features_25") == "features.25"  # underscores for dots
    with pytest.raises(LayerLookupError, match="relu5_3"):
        clf.resolve_layer("relu6_1")
