import pytest
import torch

from genviz.generator import PAPER_PARAMETERS, Decoder, count_parameters, decoder_from_checkpoint


def test_paper_decoder_shape_and_size():
    dec = Decoder()
    assert dec.code_dim == 3200
    assert dec.output_size() == 224
    n = count_parameters(dec) + dec.code_dim  # + the alpha layer, as the paper counts
    assert abs(n - PAPER_PARAMETERS) < 100, n  # ours 5,240,783 vs the paper's 5,240,841


def test_grouped_decoder_is_independent_copies():
    torch.manual_seed(0)
    single = Decoder(code_channels=4, code_size=2, channels=(8, 4), layout="same")
    group = Decoder(code_channels=4, code_size=2, channels=(8, 4), layout="same", groups=3)
    with torch.no_grad():
        for pb, p1 in zip(group.state_dict().values(), single.state_dict().values()):
            pb.copy_(p1.repeat(3, *([1] * (p1.dim() - 1))) if p1.dim() else p1)
    single.eval(), group.eval()
    codes = torch.randn(3, 16)
    out = group(codes.reshape(1, -1))
    assert out.shape == (3, 3, 8, 8)
    for i in range(3):
        assert torch.allclose(out[i], single(codes[i : i + 1])[0], atol=1e-5)


def test_checkpoint_round_trip(tmp_path):
    kw = dict(code_channels=4, code_size=2, channels=[8, 4], layout="same")
    dec = Decoder(**kw)
    torch.nn.init.normal_(dec.output_bn.weight)
    state = {f"decoder.{k}": v for k, v in dec.state_dict().items()}
    path = tmp_path / "dae.ckpt"
    torch.save({"hyper_parameters": {"decoder": kw}, "state_dict": state}, path)
    back = decoder_from_checkpoint(str(path))
    x = torch.randn(2, 16)
    assert torch.equal(back(x), dec.eval()(x))
    with pytest.raises(FileNotFoundError, match="train_dae.py"):
        decoder_from_checkpoint(str(tmp_path / "missing.ckpt"))
    torch.save({"state_dict": {}}, tmp_path / "other.ckpt")
    with pytest.raises(ValueError, match="not a genviz DAE checkpoint"):
        decoder_from_checkpoint(str(tmp_path / "other.ckpt"))
