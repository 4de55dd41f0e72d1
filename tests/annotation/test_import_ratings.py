import io

import pytest
from django.core.management import CommandError, call_command

from accounts.models import User
from annotation.models import Image, ModelScore, Rating
from annotation.services.rating_import import imported_rater_email
from annotation.taxonomy import EMOTIONS, TAXONOMY_VERSION
from tests.factories import make_image, make_project, make_user

pytestmark = pytest.mark.django_db
ANGER = EMOTIONS.index("Anger")
JEALOUSY = EMOTIONS.index("Jealousy & Envy")
HELPLESSNESS = EMOTIONS.index("Helplessness")


def run(tmp_path, text: str, *args: str) -> str:
    f = tmp_path / "ratings.csv"
    f.write_text(text)
    out = io.StringIO()
    call_command("import_ratings", str(f), *args, stdout=out)
    return out.getvalue()


def test_long_format_intensity_fills_missing_emotions_with_zero(tmp_path):
    project = make_project(slug="hq")
    existing = make_image(project, name="face1.jpg")
    out = run(tmp_path, "image,rater,emotion,value\n"
                        "face1.jpg,ann_a,Anger,5\n"
                        "face1.jpg,ann_a,Jealousy / Envy,2\n"   # alias
                        "face1.jpg,ann_b,Anger,0\n"
                        "face2.jpg,ann_a,Hopelessness,7\n",     # alias; new placeholder image
              "--project", "hq", "--format", "long")
    assert "imported 3 ratings and 0 model predictions" in out
    assert "1 placeholder images, 2 new rater accounts" in out
    a = User.objects.get(email=imported_rater_email("ann_a"))
    assert not a.is_active and a.imported and a.display_name == "ann_a"
    assert a.projects.filter(pk=project.pk).exists()
    r = Rating.objects.get(rater=a, image=existing)
    assert len(r.values) == 40 and r.values[ANGER] == 5 and r.values[JEALOUSY] == 2 and sum(r.values) == 7
    assert r.taxonomy_version == TAXONOMY_VERSION and r.source == "import" and r.emotion is None
    face2 = Image.objects.get(project=project, name="face2.jpg")
    assert face2.is_placeholder and face2.sha256 is None
    assert Rating.objects.get(image=face2).values[HELPLESSNESS] == 7


def test_invalid_rows_reject_the_whole_file_with_line_numbers(tmp_path):
    project = make_project(slug="hq")
    text = ("image,rater,emotion,value\n"
            "f1.jpg,a,Anger,3\n"
            "f1.jpg,a,Angst,3\n"        # unknown emotion
            "f1.jpg,b,Anger,8\n"        # off the 0..7 scale
            "f1.jpg,a,Anger,4\n"        # duplicate rater+image+emotion
            "f1.jpg,c,Fear,2.5\n")      # not a whole number
    with pytest.raises(CommandError) as err:
        run(tmp_path, text, "--project", "hq", "--format", "long")
    msg = str(err.value)
    assert "4 invalid row(s); nothing was imported" in msg
    assert "line 3: unknown emotion 'Angst'" in msg
    assert "line 4: value 8 is off the scale (allowed: 0..7)" in msg
    assert "line 5: duplicate rater+image+emotion (a, f1.jpg, Anger); first on line 2" in msg
    assert "line 6: value '2.5' is not a whole number" in msg
    assert not Rating.objects.exists() and not Image.objects.filter(project=project).exists()
    assert not User.objects.exists()


def test_scale_0_to_2(tmp_path):
    make_project(slug="voice", scale_max=2)
    with pytest.raises(CommandError, match="line 2: value 3 is off the scale \\(allowed: 0..2\\)"):
        run(tmp_path, "image,rater,emotion,value\nv.jpg,a,Anger,3\n", "--project", "voice", "--format", "long")
    out = run(tmp_path, "image,rater,emotion,value\nv.jpg,a,Anger,2\n", "--project", "voice", "--format", "long")
    assert "imported 1 ratings" in out
    assert Rating.objects.get().scale_max == 2


def test_import_never_overwrites_an_existing_rating(tmp_path):
    make_project(slug="hq")
    run(tmp_path, "image,rater,emotion,value\nf.jpg,a,Anger,3\n", "--project", "hq", "--format", "long")
    with pytest.raises(CommandError, match="already has a rating for f.jpg"):
        run(tmp_path, "image,rater,emotion,value\nf.jpg,a,Anger,6\ng.jpg,a,Anger,1\n",
            "--project", "hq", "--format", "long")
    assert [r.values[ANGER] for r in Rating.objects.all()] == [3]
    assert not Image.objects.filter(name="g.jpg").exists()


def test_emonet_binary_format(tmp_path):
    project = make_project(slug="bin", mode="binary")
    out = run(tmp_path, "path,annotator,value,emotion\n"
                        "imgs/1.jpg,rater1,True,Anger\n"
                        "imgs/1.jpg,rater2,False,Anger\n"
                        "imgs/1.jpg,rater1,True,Hopelessness\n"
                        "imgs/2.jpg,rater1,false,Fear\n",
              "--project", "bin", "--format", "emonet-binary")
    assert "imported 4 ratings" in out
    votes = {(r.rater.display_name, r.image.name, EMOTIONS[r.emotion]): r.values
             for r in Rating.objects.filter(project=project).select_related("rater", "image")}
    assert votes == {("rater1", "imgs/1.jpg", "Anger"): [1], ("rater2", "imgs/1.jpg", "Anger"): [0],
                     ("rater1", "imgs/1.jpg", "Helplessness"): [1], ("rater1", "imgs/2.jpg", "Fear"): [0]}
    with pytest.raises(CommandError, match="line 2: value 'maybe' is not True/False"):
        run(tmp_path, "path,annotator,value,emotion\nx.jpg,r,maybe,Fear\n", "--project", "bin",
            "--format", "emonet-binary")


def test_emonet_binary_needs_a_binary_project(tmp_path):
    make_project(slug="hq")
    with pytest.raises(CommandError, match="import them into a binary project"):
        run(tmp_path, "path,annotator,value,emotion\nx.jpg,r,True,Fear\n", "--project", "hq",
            "--format", "emonet-binary")


def test_emonet_hq_keeps_model_predictions_apart(tmp_path):
    project = make_project(slug="hq")
    text = ('image,annotator,human,annotations\n'
            'a.jpg,expert_1,True,"{\'Positive High-Energy Emotions|Amusement\': 6, '
            '\'Negative High-Energy Emotions|Anger\': 1}"\n'
            'a.jpg,expert_2,True,"{}"\n'
            'a.jpg,empathic-insight,False,"{\'Positive High-Energy Emotions|Amusement\': 5.25}"\n')
    out = run(tmp_path, text, "--project", "hq", "--format", "emonet-hq")
    assert "imported 2 ratings and 1 model predictions" in out
    r1 = Rating.objects.get(rater__display_name="expert_1")
    assert r1.values[EMOTIONS.index("Amusement")] == 6 and r1.values[ANGER] == 1 and sum(r1.values) == 7
    assert sum(Rating.objects.get(rater__display_name="expert_2").values) == 0
    score = ModelScore.objects.get(project=project)
    assert score.model_name == "empathic-insight" and score.scores[EMOTIONS.index("Amusement")] == 5.25
    # The model is not a rater.
    assert not User.objects.filter(display_name="empathic-insight").exists()
    assert Rating.objects.count() == 2


def test_emonet_hq_bad_rows(tmp_path):
    make_project(slug="hq")
    text = ('image,annotator,human,annotations\n'
            'a.jpg,e1,True,"{\'X|Anger\': 9}"\n'
            'a.jpg,e2,True,"not a dict"\n'
            'a.jpg,e3,True,"{\'X|Wistfulness\': 1}"\n')
    with pytest.raises(CommandError) as err:
        run(tmp_path, text, "--project", "hq", "--format", "emonet-hq")
    msg = str(err.value)
    assert "line 2: Anger: value 9 is off the scale" in msg
    assert "line 3: annotations is not a dict literal" in msg
    assert "line 4: unknown emotion 'X|Wistfulness'" in msg
    assert not Rating.objects.exists()


def test_wrong_header_is_named(tmp_path):
    make_project(slug="hq")
    with pytest.raises(CommandError, match="lacks column\\(s\\) rater, value"):
        run(tmp_path, "image,annotator,emotion,score\n", "--project", "hq", "--format", "long")


def test_existing_user_by_email_is_reused(tmp_path):
    project = make_project(slug="hq")
    user = make_user(email="dr.kim@example.org")
    run(tmp_path, "image,rater,emotion,value\nf.jpg,dr.kim@example.org,Anger,3\n", "--project", "hq", "--format", "long")
    assert Rating.objects.get().rater == user and user.projects.filter(pk=project.pk).exists()
