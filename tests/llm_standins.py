"""Tiny random-weight stand-ins of the LLM rerankers, in each family's real folder layout.

They test loading, templates, padding and scoring, not quality: hidden size 64, 2 layers, a byte-level
BPE tokenizer trained with ``tokenizers`` on a few hundred zh/en strings of the shared data (with the
tokens the formats read: "yes", "no", "Yes"). A few MB, built in seconds, once per test session.
"""

from __future__ import annotations

import json
from pathlib import Path

#: the Qwen chat template's shape (system/user/assistant turns only: no query/document roles)
QWEN_TEMPLATE = ("{% for message in messages %}{{ '<|im_start|>' + message['role'] + '\\n' + message['content'] "
                 "+ '<|im_end|>' + '\\n' }}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}"
                 "{% endif %}")
#: a conversion's template that renders the query/document roles sentence-transformers maps a pair to
PAIR_TEMPLATE = ("{% for message in messages %}{% if message['role'] == 'query' %}<Query>: {{ message['content'] }}\n"
                 "{% elif message['role'] == 'document' %}<Document>: {{ message['content'] }}{% endif %}"
                 "{% endfor %}")


def _corpus(data: Path) -> list[str]:
    texts = []
    for path in (data / "retrieval/cmrc2018-zh/queries.jsonl", data / "retrieval/cranfield-en/queries.jsonl"):
        with path.open(encoding="utf-8") as fh:
            texts += [json.loads(line)["text"] for _, line in zip(range(150), fh, strict=False)]
    with (data / "retrieval/cmrc2018-zh/corpus.jsonl").open(encoding="utf-8") as fh:
        texts += [json.loads(line)["text"][:300] for _, line in zip(range(60), fh, strict=False)]
    words = "yes no Yes No A: B: <Instruct>: <Query>: <Document>: Judge whether the Document meets the requirements"
    return texts + [words] * 50 + ["yes", "no", "Yes", "No"] * 50  # each at a text's start: no space before


def _tokenizer(data: Path, specials: list[str], **kwargs):
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=800, special_tokens=specials,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    tok.train_from_iterator(_corpus(data), trainer)
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, **kwargs)
    for word in ("yes", "no", "Yes"):
        assert fast.convert_tokens_to_ids(word) != fast.unk_token_id and len(fast(word)["input_ids"]) == 1, word
    return fast


def _small(config_cls, vocab: int, **kwargs):
    return config_cls(vocab_size=vocab, hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                      num_attention_heads=4, num_key_value_heads=2, head_dim=16, max_position_embeddings=1024,
                      tie_word_embeddings=False, **kwargs)


def build_standins(root: Path, data: Path) -> dict[str, Path]:
    import torch
    from transformers import (
        GemmaConfig,
        GemmaForCausalLM,
        Qwen3Config,
        Qwen3ForCausalLM,
        Qwen3ForSequenceClassification,
        XLMRobertaConfig,
        XLMRobertaForSequenceClassification,
    )

    torch.manual_seed(0)
    out = {}
    qtok = _tokenizer(data, ["<|endoftext|>", "<|im_start|>", "<|im_end|>"], eos_token="<|im_end|>",
                      pad_token="<|endoftext|>", chat_template=QWEN_TEMPLATE)
    qwen = Qwen3ForCausalLM(_small(Qwen3Config, len(qtok), eos_token_id=qtok.eos_token_id,
                                   pad_token_id=qtok.pad_token_id))
    out["qwen3"] = root / "Qwen3-Reranker-0.6B"
    qwen.save_pretrained(out["qwen3"])
    qtok.save_pretrained(out["qwen3"])
    out["causal_unknown"] = root / "some-chat-llm"  # the same weights, an id rag_eval does not know
    qwen.save_pretrained(out["causal_unknown"])
    qtok.save_pretrained(out["causal_unknown"])

    # the sequence-classification conversion: one logit = the yes row minus the no row of the LM head
    yes, no = qtok.convert_tokens_to_ids("yes"), qtok.convert_tokens_to_ids("no")
    seq = Qwen3ForSequenceClassification(_small(Qwen3Config, len(qtok), num_labels=1,
                                                pad_token_id=qtok.pad_token_id, eos_token_id=qtok.eos_token_id))
    seq.model.load_state_dict(qwen.model.state_dict())
    with torch.no_grad():
        seq.score.weight.copy_((qwen.lm_head.weight[yes] - qwen.lm_head.weight[no]).unsqueeze(0))
    for key, template in (("qwen3_seq_cls", QWEN_TEMPLATE), ("qwen3_seq_cls_pairs", PAIR_TEMPLATE),
                          ("qwen3_seq_cls_bare", None)):
        out[key] = root / {"qwen3_seq_cls": "reranker-seq-cls", "qwen3_seq_cls_pairs": "reranker-seq-cls-pairs",
                           "qwen3_seq_cls_bare": "reranker-seq-cls-bare"}[key]
        seq.save_pretrained(out[key])
        qtok.chat_template = template
        qtok.save_pretrained(out[key])
    qtok.chat_template = QWEN_TEMPLATE

    gtok = _tokenizer(data, ["<pad>", "<eos>", "<bos>", "<unk>"], bos_token="<bos>", eos_token="<eos>",
                      pad_token="<pad>", unk_token="<unk>", padding_side="left")
    gemma = GemmaForCausalLM(_small(GemmaConfig, len(gtok), bos_token_id=gtok.bos_token_id,
                                    eos_token_id=gtok.eos_token_id, pad_token_id=gtok.pad_token_id))
    out["gemma"] = root / "bge-reranker-v2-gemma"
    gemma.save_pretrained(out["gemma"])
    gtok.save_pretrained(out["gemma"])

    # bge-reranker-v2-minicpm-layerwise: its config names remote code (no weights: it is refused up front)
    out["layerwise"] = root / "bge-reranker-v2-minicpm-layerwise"
    out["layerwise"].mkdir(exist_ok=True)
    (out["layerwise"] / "config.json").write_text(json.dumps({
        "architectures": ["LayerWiseMiniCPMForCausalLM"], "model_type": "minicpm",
        "auto_map": {"AutoModelForCausalLM": "modeling_minicpm_reranker.LayerWiseMiniCPMForCausalLM"}}))
    gtok.save_pretrained(out["layerwise"])

    xtok = _tokenizer(data, ["<s>", "<pad>", "</s>", "<unk>", "<mask>"], bos_token="<s>", eos_token="</s>",
                      sep_token="</s>", cls_token="<s>", pad_token="<pad>", unk_token="<unk>", mask_token="<mask>")
    from tokenizers import processors

    xtok.backend_tokenizer.post_processor = processors.RobertaProcessing(("</s>", xtok.sep_token_id),
                                                                         ("<s>", xtok.cls_token_id))
    xlmr = XLMRobertaForSequenceClassification(XLMRobertaConfig(
        vocab_size=len(xtok), hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4,
        max_position_embeddings=514, num_labels=1, pad_token_id=xtok.pad_token_id, bos_token_id=xtok.bos_token_id,
        eos_token_id=xtok.eos_token_id))
    out["xlmr"] = root / "bge-reranker-v2-m3"
    xlmr.save_pretrained(out["xlmr"])
    xtok.save_pretrained(out["xlmr"])
    return out


def build_qwen3_embedding(root: Path, qwen3_folder: Path) -> Path:
    """Qwen3-Embedding's sentence-transformers folder: Transformer (left padding) + last-token Pooling +
    Normalize, with a query prompt in its config, on the Qwen3 stand-in's backbone."""
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.base.modules import Normalize, Transformer
    from sentence_transformers.sentence_transformer.modules import Pooling

    transformer = Transformer(str(qwen3_folder), processor_kwargs={"padding_side": "left"})
    model = SentenceTransformer(modules=[transformer, Pooling(64, pooling_mode="lasttoken"), Normalize()],
                                prompts={"query": "Instruct: Given a web search query, retrieve relevant passages "
                                                  "that answer the query\nQuery:", "document": ""})
    folder = root / "Qwen3-Embedding-0.6B"
    model.save(str(folder))
    # the files as Qwen publishes them (sentence-transformers 3/4 names): plain texts, no chat template applied
    (folder / "sentence_bert_config.json").write_text(json.dumps({"max_seq_length": 1024, "do_lower_case": False}))
    (folder / "modules.json").write_text(json.dumps([
        {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
        {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"},
        {"idx": 2, "name": "2", "path": "2_Normalize", "type": "sentence_transformers.models.Normalize"}]))
    return folder
