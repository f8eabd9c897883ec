"""Every file of the bad-input corpus through the real CLI: the documented exit code, a message
that names the place (spec ``file:line:col field.path``; data file and CSV line or array), says
what is wrong in words, and never a traceback.  Nothing in a spec or a data file is executed.

``validate`` is used where it reaches the error (static checks); ``run`` where the error only
shows when the data are loaded.  Two cases also go through a real subprocess (``main()``).
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import traceback
from dataclasses import dataclass
from pathlib import Path

import pytest

from fairaudit.errors import ExitCode
from fairaudit.testing.runs import cli

CORPUS = Path(__file__).resolve().parent / "corpus"
USAGE = int(ExitCode.USAGE_ERROR)
TRACEBACK = "Traceback (most recent call last)"
#: Files a YAML tag or a pickle would create if the corpus were ever executed.
MARKERS = ("PWNED-apply", "PWNED-new", "PWNED-npz", "PWNED-plugin", "PWNED-pt")


@dataclass(frozen=True)
class Case:
    spec: str
    command: str  # "validate" or "run"
    code: int
    expect: tuple[str, ...]  # regexes that must all match the output


def _case(spec: str, command: str, *expect: str, code: int = USAGE) -> Case:
    return Case(spec, command, code, expect)


SPEC_CASES = [
    # ---- malformed YAML: file:line:col and the problem in words
    _case("yaml_unclosed_bracket.yaml", "validate",
          r"yaml_unclosed_bracket\.yaml:7:6  invalid YAML: the '\[' opened at line 6, column 13 is not closed"),
    _case("yaml_tab_indent.yaml", "validate",
          r"yaml_tab_indent\.yaml:3:1  invalid YAML: a tab character .*indent with spaces, never tabs"),
    _case("yaml_duplicate_key.yaml", "validate",
          r'yaml_duplicate_key\.yaml:4:1  invalid YAML: found duplicate key "name"'),
    _case("nested_5000.yaml", "validate",
          r"nested_5000\.yaml:4:58  invalid YAML: brackets nested more than 50 levels deep"),
    _case("block_nested_60.yaml", "validate",
          r"block_nested_60\.yaml:54:51  description\.k0\.k1\.\S*\.k49  nested more than 50 levels deep"),
    _case("block_nested_400.yaml", "validate", r"block_nested_400\.yaml  invalid YAML: nested too deeply"),
    # ---- tags that would run code, and other tags: refused, with the field they sit in
    _case("tag_python_apply.yaml", "validate",
          r"tag_python_apply\.yaml:3:8  title  the YAML tag '!!python/object/apply:os\.system' is refused",
          r"nothing in it was run"),
    _case("tag_python_apply.yaml", "run",
          r"tag_python_apply\.yaml:3:8  title  the YAML tag '!!python/object/apply:os\.system' is refused"),
    _case("tag_python_object_new.yaml", "validate",
          r"tag_python_object_new\.yaml:5:16  dataset\.params\.n_samples  the YAML tag "
          r"'!!python/object/new:subprocess\.Popen' is refused"),
    _case("tag_python_name.yaml", "validate",
          r"tag_python_name\.yaml:4:7  seed  the YAML tag '!!python/name:os\.system' is refused"),
    _case("tag_python_module.yaml", "validate",
          r"tag_python_module\.yaml:4:14  description  the YAML tag '!!python/module:os' is refused"),
    _case("tag_unknown_local.yaml", "validate",
          r"tag_unknown_local\.yaml:3:13  attributes  unknown YAML tag '!include': a spec is plain data"),
    # ---- aliases that expand without end
    _case("alias_bomb.yaml", "validate",
          r"alias_bomb\.yaml:10:1  f  the YAML expands to more than 100,000 values .*alias bomb",
          r"The spec has 1 problem"),
    _case("alias_recursive.yaml", "validate",
          r"alias_recursive\.yaml:3:13  attributes\[1\]  an alias \(\*name\) refers to the list or mapping "
          r"that contains it"),
    # ---- structure and types: every problem at once, each at its line with its field path
    _case("unknown_field.yaml", "validate",
          r"unknown_field\.yaml:6:1  statistcs  unknown field \(typo\?\)"),
    _case("unknown_plugin.yaml", "validate",
          r"unknown_plugin\.yaml:3:3  dataset\.name  unknown datasets plugin 'synthetic_embedings'\. "
          r"Did you mean 'synthetic_embeddings'",
          r"unknown_plugin\.yaml:6:1  model\.name  unknown models plugin 'logistc'\. Did you mean 'logistic'\?"),
    _case("wrong_types.yaml", "validate",
          r"The spec has 4 problem",
          r"wrong_types\.yaml:2:1  seed  Input should be a valid integer.*\(got 'forty-two'\)",
          r"wrong_types\.yaml:5:12  dataset\.params\.n_samples  Input should be a valid integer.*\(got 'a few'\)",
          r"wrong_types\.yaml:6:1  attributes  Input should be a valid list  \(got 'sex'\)",
          r"wrong_types\.yaml:8:3  statistics\.n_boot  Input should be a valid integer.*\(got 'lots'\)"),
    _case("negative_n_boot.yaml", "validate",
          r"negative_n_boot\.yaml:7:3  statistics\.n_boot  Input should be greater than or equal to 0  \(got -5\)",
          r"negative_n_boot\.yaml:8:3  statistics\.ci_level  Input should be less than 1  \(got 95\)"),
    _case("top_level_list.yaml", "validate",
          r"top_level_list\.yaml:1:1  a spec must be a YAML mapping \(key: value lines\) at the top level, "
          r"not a list"),
    # ---- not a spec at all
    _case("empty.yaml", "validate", r"empty\.yaml  spec file is empty"),
    _case("only_comments.yaml", "validate", r"only_comments\.yaml  spec file has no content \(only comments"),
    _case("does_not_exist.yaml", "validate", r"does_not_exist\.yaml  spec file not found"),
    _case("does_not_exist.yaml", "run", r"does_not_exist\.yaml  spec file not found"),
    _case("data", "validate", r"data  is a folder, not a YAML file"),
    _case("binary_spec.yaml", "validate",
          r"binary_spec\.yaml:1:1  a binary file, not UTF-8 text: byte 0x89 at byte offset 0"),
    _case("utf16_spec.yaml", "validate",
          r"utf16_spec\.yaml:1:1  the file is UTF-16 text \(little-endian; it starts with a UTF-16 byte-order "
          r"mark\); save the spec as UTF-8"),
    _case("utf16_no_bom_spec.yaml", "validate",
          r"utf16_no_bom_spec\.yaml:1:1  the file is UTF-16 text \(big-endian, no byte-order mark\); save the spec "
          r"as UTF-8"),
    _case("utf32_spec.yaml", "validate",
          r"utf32_spec\.yaml:1:1  the file is UTF-32 text \(little-endian; it starts with a UTF-32 byte-order "
          r"mark\)"),
    _case("utf32_no_bom_spec.yaml", "validate",
          r"utf32_no_bom_spec\.yaml:1:1  the file is UTF-32 text \(little-endian, no byte-order mark\)"),
    _case("list_500k_spec.yaml", "validate",
          r"list_500k_spec\.yaml  the file holds about 500,002 values \(3 lines, 499,999 commas\); a spec holds at "
          r"most 100,000: is data pasted into it\?"),
    # ---- a gate that cannot judge is refused before any training
    _case("threshold_misspelled_metric.yaml", "validate",
          r"threshold_misspelled_metric\.yaml:7:3  thresholds\.equal_oportunity_difference  no metric of this spec "
          r"\(group_metrics\) produces 'equal_oportunity_difference'\. Did you mean 'equal_opportunity_difference'"),
    _case("threshold_misspelled_metric.yaml", "run", r"thresholds\.equal_oportunity_difference  no metric"),
    _case("threshold_unknown_attribute_and_arm.yaml", "validate",
          r":7:23  thresholds\.roc_auc\.attribute  attribute 'sexx' is not audited .*Did you mean 'sex'\?",
          r":7:57  thresholds\.roc_auc\.arms\[1\]  arm 'advae' is not an arm of this audit \(\['baseline'\]\)"),
    # ---- user errors that were internal errors (exit 3) once: issue 15 item 7
    _case("seed_out_of_range.yaml", "validate",
          r"seed_out_of_range\.yaml:2:1  seed  Input should be greater than or equal to 0  \(got -1\)",
          r"seed_out_of_range\.yaml:10:40  split\.seed  Input should be less than or equal to 4294967295  "
          r"\(got 4294967296\)"),
    _case("seed_out_of_range.yaml", "run", r"seed  Input should be greater than or equal to 0"),
    _case("attributes_repeated.yaml", "validate",
          r"attributes_repeated\.yaml:8:1  attributes  each attribute may be listed once; repeated: \['sex'\]"),
    # ---- validate as strict as run's static checks: issue 15 items 8-9
    _case("attribute_not_sensitive.yaml", "validate",
          r"attribute_not_sensitive\.yaml:10:19  attributes\[1\]  attribute 'age' is not among the sensitive columns "
          r"of dataset 'table' \(\['sex'\]\): add it to dataset\.params\.sensitive"),
    _case("attribute_not_sensitive.yaml", "run", r"attributes\[1\]  attribute 'age' is not among the sensitive"),
    _case("model_cnn_on_table.yaml", "validate",
          r"model_cnn_on_table\.yaml:6:1  model  model 'cnn' takes images, but dataset 'table' gives features; use a "
          r"model that takes features \(logistic, mlp"),
    _case("debiaser_features_on_images.yaml", "validate",
          r"debiaser_features_on_images\.yaml:7:5  debiasers\[0\]\.name  debiaser 'advvae' takes features, but "
          r"dataset 'synthetic_cxr' gives images: it cannot run on this dataset"),
    _case("intersections_bad_entries.yaml", "validate",
          r"The spec has 2 problem",
          r"intersections_bad_entries\.yaml:8:5  intersections\[1\]  an intersection lists at least two attributes "
          r"\(got \['sex'\]\)",
          r"intersections_bad_entries\.yaml:9:11  intersections\[2\]\[1\]  'agee' is not listed in 'attributes'"),
    _case("stratify_unknown.yaml", "validate",
          r"stratify_unknown\.yaml:11:56  split\.stratify\[1\]  'sexe' is neither an audited attribute nor a sensitive "
          r"column of dataset 'table' \(\['sex'\]\); the split would silently ignore it"),
    _case("stratify_unknown.yaml", "run", r"split\.stratify\[1\]  'sexe' is neither an audited attribute"),
    _case("split_leaves_exactly_10_percent.yaml", "validate", r"ok split_leaves_exactly_10_percent\.yaml", code=0),
    _case("split_leaves_exactly_10_percent.yaml", "run", r"run folder:", code=0),
    _case("images_mask_partly_empty.yaml", "validate",
          r"images_mask_partly_empty\.yaml:10:5  dataset\.params\.mask_column  \S*mask_partly_empty\.csv: "
          r"mask_column 'mask' is empty on 2 of 12 rows \(CSV line\(s\) 5, 10\): every row needs a mask file"),
    _case("arm_names_collide.yaml", "validate",
          r"arm names must be unique .*repeated: \['g \(augment\)'\]"),
]

DATA_CASES = [
    # ---- found by validate (headers only): the spec line of the parameter at fault, and the file
    _case("table_missing_file.yaml", "validate",
          r"table_missing_file\.yaml:5:5  dataset\.params\.path  data file not found: \S*data/does_not_exist\.csv"),
    _case("table_missing_file.yaml", "run", r"error: DataError: data file not found: \S*data/does_not_exist\.csv"),
    _case("table_missing_column.yaml", "validate",
          r"table_missing_column\.yaml:8:17  dataset\.params\.sensitive\[0\]  \S*target_text\.csv: no column "
          r"'sexx' \(sensitive attribute\)\. Did you mean 'sex'\?"),
    _case("table_empty_csv.yaml", "validate",
          r"table_empty_csv\.yaml:5:5  dataset\.params\.path  \S*data/empty\.csv is empty \(0 bytes\)"),
    _case("table_latin1_header.yaml", "validate",
          r"table_latin1_header\.yaml:5:5  dataset\.params\.path  \S*latin1_header\.csv: not valid UTF-8 text: "
          r"byte 0xE9 at byte offset 10 \(line 1, column 11\) cannot be decoded .*set `encoding: cp1252`"),
    _case("table_unknown_encoding.yaml", "validate",
          r"table_unknown_encoding\.yaml:6:5  dataset\.params\.encoding  unknown encoding 'klingon'"),
    _case("table_binary_as_csv.yaml", "validate",
          r"table_binary_as_csv\.yaml:5:5  dataset\.params\.path  \S*m00\.png: contains NUL bytes: a binary file, "
          r"not a text CSV"),
    _case("npz_pickled_images.yaml", "validate",
          r"npz_pickled_images\.yaml:5:5  dataset\.params\.path  \S*pickled_pack\.npz: array 'images' holds "
          r"Python objects \(a pickle\), which fairaudit refuses to load"),
    _case("npz_pickled_images.yaml", "run", r"error: DataError: \S*pickled_pack\.npz: array 'images' holds Python"),
    _case("dicom_window_zero_width.yaml", "validate",
          r"dicom_window_zero_width\.yaml:10:32  dataset\.params\.dicom_window\.width  dicom_window: its 'width' "
          r"must be >= 1 \(DICOM's linear window\), got 0\.0"),
    _case("bins_not_increasing.yaml", "validate",
          r"bins_not_increasing\.yaml:\d+:\d+  dataset\.params\.\S+  bins\['age'\]: the edges must increase "
          r"strictly, but 65 is followed by 50 in \[0, 65, 50, 120\]"),
    _case("bins_not_increasing.yaml", "run",
          r"error: DataError: table: dataset\.params\.bins\['age'\]: the edges must increase strictly"),
    _case("bins_unknown_attribute.yaml", "validate",
          r"bins_unknown_attribute\.yaml:10:7  dataset\.params\.bins\.agee  bins\['agee'\]: 'agee' is not one of "
          r"the sensitive columns \['sex', 'age'\]"),
    _case("predictions_unknown_score_column.yaml", "validate",
          r"predictions_unknown_score_column\.yaml:7:25  dataset\.params\.score\.new  "
          r"\S*predictions_out_of_range\.csv: no column 'scroe' \(score of arm 'new'\)\. Did you mean 'score'\?"),
    # ---- a dataset of given scores trains and splits nothing: each field that would, at its line
    _case("predictions_model_given.yaml", "validate",
          r"predictions_model_given\.yaml:6:1  model  dataset 'predictions' gives a model's scores: no model is "
          r"trained or run: the scores in the data are audited as given; remove `model`"),
    _case("predictions_model_given.yaml", "run",
          r"predictions_model_given\.yaml:6:1  model  dataset 'predictions' gives a model's scores"),
    _case("predictions_split_debiaser_probe.yaml", "validate",
          r"The spec has 3 problem",
          r"predictions_split_debiaser_probe\.yaml:10:1  split  dataset 'predictions' gives a model's scores: "
          r"nothing is split: every row is test data",
          r"predictions_split_debiaser_probe\.yaml:11:1  debiasers  dataset 'predictions' gives a model's scores: "
          r"a debiaser retrains a model",
          r"predictions_split_debiaser_probe\.yaml:12:26  metrics\[1\]  metric 'attribute_probe' needs features of "
          r"a model, which dataset 'predictions' does not have \(scores only\)"),
    # ---- found when the data are loaded: the data file and the CSV line / array
    _case("predictions_score_out_of_range.yaml", "run",
          r"error: DataError: \S*predictions_out_of_range\.csv: score column 'score' has 2 value\(s\) outside "
          r"\[0, 1\] \(from -0\.2 to 1\.3\), the first 1\.3 at CSV line 6; with score_kind: probability every score "
          r"is a probability\. If the scores are logits or decision-function margins, set score_kind: logit"),
    # ---- torch_checkpoint: names checked by validate; weight files refused unexecuted at run
    _case("checkpoint_unknown_arch.yaml", "validate",
          r"checkpoint_unknown_arch\.yaml:6:12  model\.params\.arch  unknown architecture 'densenet12': did you "
          r"mean 'densenet121'"),
    _case("checkpoint_factory_format.yaml", "validate",
          r"checkpoint_factory_format\.yaml:7:5  model\.params\.factory  factory 'my_nets\.build' must read "
          r"'package\.module:function'",
          r"checkpoint_factory_format\.yaml:8:5  model\.params\.weights  weights 'data/never_read\.pkl': give a "
          r"\.safetensors file or a \.pt/\.pth state dict"),
    _case("checkpoint_pickled_model.yaml", "run",
          r"error: CheckpointError: weights file \S*pickled_model\.pt is not a plain state dict: "
          r"torch\.load\(weights_only=True\) refused it \(Unsupported global: GLOBAL io\.open"),
    _case("checkpoint_not_state_dict.yaml", "run",
          r"error: CheckpointError: weights file \S*tensor_list\.pt holds a list, not a state dict"),
    _case("checkpoint_missing_weights.yaml", "validate",
          r"checkpoint_missing_weights\.yaml:6:\d+  model\.params\.weights  file not found: "
          r"\S*no_such_file\.safetensors"),
    _case("checkpoint_missing_weights.yaml", "run",
          r"error: CheckpointError: weights file not found: \S*no_such_file\.safetensors"),
    _case("predictions_score_missing.yaml", "run",
          r"error: DataError: \S*predictions_missing_score\.csv: score column 'score' has 1 missing value\(s\) "
          r"\(empty or NaN\), the first at CSV line 4"),
    _case("table_header_only.yaml", "run", r"error: DataError: \S*header_only\.csv has a header but no data rows"),
    _case("table_latin1_body.yaml", "run",
          r"error: DataError: \S*latin1_body\.csv: not valid UTF-8 text: byte 0xE9 at byte offset 75 "
          r"\(line 5, column 11\) cannot be decoded \(invalid continuation byte\)\. If the file is Windows-1252 "
          r".*set `encoding: cp1252` in dataset\.params"),
    _case("table_target_not_binary.yaml", "run",
          r"error: DataError: \S*target_012\.csv: target 'y' is not binary 0/1: found 3 value\(s\) "
          r"\['0', '1', '2'\] \(the first other than 0/1 is 2 at CSV line 6\); set params\.positive_label"),
    _case("table_positive_label_absent.yaml", "run",
          r"error: DataError: \S*target_text\.csv: positive_label 'yes' never occurs in target 'y'; "
          r"values: \['neg', 'pos'\]"),
    _case("table_ragged_row.yaml", "run",
          r"error: DataError: \S*ragged\.csv: CSV line 5 has 5 fields but the header has 4; is a value holding "
          r"the separator ',' without quotes\?"),
    _case("table_npz_length_mismatch.yaml", "run",
          r"error: DataError: \S*arrays_mismatch\.npz: array 'y' \(target\) has shape \(9,\), expected \(10,\)"),
    _case("table_npz_pickled.yaml", "run",
          r"error: DataError: \S*pickled\.npz: array 'X' holds Python objects \(a pickle\), which fairaudit "
          r"refuses to load because unpickling can run code"),
    _case("npz_index_more_rows.yaml", "run",
          r"error: DataError: \S*pack_index_12\.csv has 12 data rows but array 'images' in \S*pack\.npz holds "
          r"10 images"),
    _case("npz_index_fewer_rows.yaml", "run",
          r"error: DataError: \S*pack_index_8\.csv has 8 data rows but array 'images' in \S*pack\.npz holds "
          r"10 images; without params\.index_column"),
    _case("images_truncated.yaml", "run",
          r"error: DataError: \S*truncated_images\.csv: CSV line 5: cannot read image \S*truncated\.png "
          r"\(image file is truncated\)"),
    _case("images_corrupt.yaml", "run",
          r"error: DataError: \S*corrupt_images\.csv: CSV line 5: cannot read image \S*not_an_image\.png "
          r"\(cannot identify image file"),
    _case("images_corrupt_streamed.yaml", "run",  # streamed: the header check fails before training
          r"error: DataError: \S*corrupt_images\.csv: CSV line 5: cannot read image \S*not_an_image\.png "
          r"\(cannot identify image file"),
    _case("images_missing_file.yaml", "run",
          r"error: DataError: \S*missing_images\.csv: 1 image file\(s\) not found: line 7: \S*not_there\.png"),
    _case("images_native_size_mismatch.yaml", "run",
          r"error: DataError: \S*mixed_images\.csv: the images differ in size: \S*m00\.png \(CSV line 2\) is "
          r"40x40 px but \S*m01\.png \(CSV line 3\) is 50x30 px; set params\.image_size"),
    _case("dicom_no_pixel_data.yaml", "run",
          r"error: DataError: \S*dicom_report\.csv: CSV line 4: cannot read DICOM \S*report\.dcm: a DICOM file "
          r"without pixel data \(SOP class 'Secondary Capture Image Storage', modality 'SR'\): not an image"),
    _case("dicom_no_pixel_data_streamed.yaml", "run",  # streamed: the header check fails before training
          r"error: DataError: \S*dicom_report\.csv: CSV line 4: cannot read DICOM \S*report\.dcm: a DICOM file "
          r"without pixel data"),
    _case("dicom_multi_frame.yaml", "run",
          r"error: DataError: \S*dicom_cine\.csv: CSV line 3: cannot read DICOM \S*cine\.dcm: a multi-frame DICOM "
          r"\(3 frames\); set params\.dicom_frame"),
    _case("table_inf_feature.yaml", "run",
          r"error: DataError: \S*inf_feature\.csv: feature column 'f1' holds 2 infinite value\(s\) \(inf, or beyond "
          r"float32's range of ±3\.4e38\), the first at CSV line 8; a feature must be a finite number"),
    _case("images_mask_partly_empty.yaml", "run",
          r"error: DataError: \S*mask_partly_empty\.csv: mask_column 'mask' is empty on 2 of 12 rows "
          r"\(CSV line\(s\) 5, 10\)"),
    _case("bins_outside_edges.yaml", "run",
          r"error: DataError: \S*ages\.csv: bins\['age'\]: 23 value\(s\) of 'age' lie outside the edges \[30, 90\] "
          r"\(from 19 to 94\); widen the edges, or leave an end open with -\.inf or \.inf"),
    _case("bins_not_numbers.yaml", "run",
          r"error: DataError: \S*ages_text\.csv: bins\['age'\]: 3 value\(s\) of 'age' are not numbers "
          r"\(e\.g\. 'unknown', 'n/k'\); clean them, or list them in params\.na_values"),
    # ---- accepted, with a warning where something was converted or filled in
    _case("table_continuous_age.yaml", "run",
          r"warning: \S*ages\.csv: sensitive attribute 'age' looks continuous \(50 distinct numeric values in 80 "
          r"rows\), so each value would be its own group; group it with bins in dataset\.params, e\.g\. "
          r"`bins: \{age: \[19, 47, 75, 94\]\}`",
          r"run folder:", code=0),
    _case("table_leaky_default_features.yaml", "run",
          r"warning: \S*leaky\.csv: left out of the default features .*: 'row' \(whole numbers, unique per row: an "
          r"identifier\); 'glucose' \(a threshold on it separates the target: single-column AUC 1\.000\); "
          r"'diagnosis' \(its value gives the target exactly: 'diabetic' -> 1, 'healthy' -> 0\)",
          r"run folder:", code=0),
    _case("images_mixed_modes_sizes.yaml", "run",
          r"warning: \S*mixed_images\.csv: the images mix bit depths: 10 8-bit \(L, P, RGB, RGBA; e\.g\. "
          r"m00\.png\); 2 high-bit-depth \(I;16; e\.g\. m03\.png\)\. High-bit-depth images are min-max scaled",
          r"run folder:", code=0),
    _case("images_mixed_depths_streamed.yaml", "run",
          r"warning: \S*mixed_images\.csv: the images mix bit depths: 10 8-bit \(L, P, RGB, RGBA; e\.g\. "
          r"m00\.png\); 2 high-bit-depth \(I;16; e\.g\. m03\.png\)\. High-bit-depth images are min-max scaled",
          r"run folder:", code=0),
    _case("table_padded_header.yaml", "run", r"run folder:", code=0),
]

PLUGIN = int(ExitCode.PLUGIN_ERROR)
#: Local plugin files are code: validate imports none, run loads them only from the spec's folder tree.
PLUGIN_CASES = [
    _case("plugin_not_imported_by_validate.yaml", "validate",
          r"the spec names local plugin files \(\S*plugins/marker_plugin\.py\): validate reads them without "
          r"running them",
          r"not verified: debiasers 'marker_debiaser': registered by the local file \S*marker_plugin\.py; its "
          r"parameters are checked when run imports it", r"ok plugin_not_imported_by_validate\.yaml", code=0),
    _case("plugin_path_dotdot.yaml", "validate",
          r"plugin_path_dotdot\.yaml:7:11  plugins\[0\]  local plugin file '\.\./plugins/marker_plugin\.py' \(it "
          r"resolves to \S*marker_plugin\.py\) is outside the spec's folder \S*: fairaudit loads local plugin files "
          r"only from the spec's own folder tree; move it there, or pass --allow-local-plugins"),
    _case("plugin_path_dotdot.yaml", "run", r"plugin_path_dotdot\.yaml:7:11  plugins\[0\]  local plugin file "
          r"'\.\./plugins/marker_plugin\.py' \(it resolves to \S*\) is outside the spec's folder"),
    _case("plugin_path_absolute.yaml", "validate",
          r"The spec has 1 problem",
          r"plugin_path_absolute\.yaml:9:5  plugins\[1\]  local plugin file '/tmp/fairaudit_outside_plugin\.py' is "
          r"outside the spec's folder"),
    _case("plugin_path_absolute.yaml", "run",
          r"plugin_path_absolute\.yaml:9:5  plugins\[1\]  local plugin file '/tmp/fairaudit_outside_plugin\.py' is "
          r"outside the spec's folder"),
    _case("plugin_import_error.yaml", "run",
          r"error: PluginLoadError: local plugin file \S*import_error_plugin\.py failed to load: ModuleNotFoundError: "
          r"No module named 'fairaudit_group_center_dependency' \(\S*import_error_plugin\.py, line 3\)", code=PLUGIN),
    _case("plugin_syntax_error.yaml", "validate",
          r"plugin_syntax_error\.yaml:7:11  plugins\[0\]  local plugin file \S*syntax_error_plugin\.py is not valid "
          r"Python: SyntaxError: .* \(line 4\)"),
    _case("plugin_syntax_error.yaml", "run",
          r"error: PluginLoadError: local plugin file \S*syntax_error_plugin\.py failed to load: SyntaxError: .*"
          r"\(\S*syntax_error_plugin\.py, line 4\)", code=PLUGIN),
]

CASES = SPEC_CASES + DATA_CASES + PLUGIN_CASES


def invoke(args: list[str]) -> tuple[int, str]:
    """Run the CLI in-process; a Python exception escaping it fails the test with its traceback."""
    result = cli(*args, catch_exceptions=True)
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        crash = "".join(traceback.format_exception(result.exception))
        pytest.fail(f"fairaudit {' '.join(args)} crashed:\n{crash}")
    return result.exit_code, result.output


def check_output(code: int, output: str, case: Case) -> None:
    assert TRACEBACK not in output
    assert code == case.code, output
    for pattern in case.expect:
        assert re.search(pattern, output), f"{pattern!r} not in:\n{output}"


def check_nothing_ran(corpus: Path) -> None:
    made = [m for m in MARKERS if (corpus / m).exists()]
    assert not made, f"the corpus executed code: {made} exist"


@pytest.fixture
def in_corpus(corpus: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Work inside the corpus copy (specs name their data and markers relative to it)."""
    monkeypatch.chdir(corpus)
    return corpus


@pytest.mark.parametrize("case", CASES, ids=lambda c: f"{c.command}-{c.spec}")
def test_bad_input_is_reported_not_crashed(case: Case, in_corpus: Path, tmp_path: Path) -> None:
    if case.spec.startswith("dicom_"):
        pytest.importorskip("pydicom")  # the corpus has DICOM files only where pydicom can write them
    extra = ["--output", str(tmp_path / "reports"), "--quiet"] if case.command == "run" else []
    code, output = invoke([case.command, case.spec, *extra])
    check_output(code, output, case)
    check_nothing_ran(in_corpus)


def test_cp1252_csv_with_missing_groups_runs_and_reports_them(in_corpus: Path, tmp_path: Path) -> None:
    """``encoding: cp1252`` decodes the file; blank ``sex`` cells become the group "(missing)"."""
    code, output = invoke(["validate", "table_cp1252_group_nan.yaml"])
    assert code == 0 and TRACEBACK not in output, output
    code, output = invoke(["run", "table_cp1252_group_nan.yaml", "-o", str(tmp_path), "-q"])
    assert code == 0 and TRACEBACK not in output, output
    assert re.search(r"warning: \S*cp1252_group_nan\.csv: sensitive column 'sex' has 3 missing value\(s\); "
                     r"they form the group '\(missing\)'", output), output
    result = json.loads(next(tmp_path.rglob("result.json")).read_text(encoding="utf-8"))
    groups = result["dataset"]["summary"]["test"]["groups"]
    assert "(missing)" in {g["group"] for g in groups["sex"]}
    assert {g["group"] for g in groups["site"]} == {"Montr\xe9al", "Z\xfcrich", "St\u2019Albans"}
    assert any("has 3 missing value(s)" in w for w in result["warnings"])  # in the report, not only on screen


def test_output_folder_that_is_a_file(in_corpus: Path, tmp_path: Path) -> None:
    (tmp_path / "taken").write_text("a file, not a folder")
    code, output = invoke(["run", "table_padded_header.yaml", "-o", str(tmp_path / "taken" / "reports")])
    check_output(code, output, _case("", "run", r"error: FairAuditError: --output \S*taken/reports: \S*taken is "
                                                r"a file, not a folder"))


def test_run_without_a_spec(in_corpus: Path) -> None:
    code, output = invoke(["run"])
    check_output(code, output, _case("", "run", r"give a SPEC file, or --resume RUN_DIR"))


def _find(command: str, spec: str) -> Case:
    return next(c for c in CASES if (c.command, c.spec) == (command, spec))


@pytest.mark.parametrize("case", [_find("run", "tag_python_apply.yaml"), _find("validate", "table_latin1_header.yaml")],
                         ids=["python-tag", "latin1-csv"])
def test_console_script_end_to_end(case: Case, in_corpus: Path, tmp_path: Path) -> None:
    """Cases through ``main()`` in a fresh interpreter (its own exception handling)."""
    extra = ["-o", str(tmp_path), "-q"] if case.command == "run" else []
    proc = subprocess.run([sys.executable, "-m", "fairaudit.cli.app", case.command, case.spec, *extra],
                          capture_output=True, text=True, timeout=120, cwd=in_corpus)
    check_output(proc.returncode, proc.stdout + proc.stderr, case)
    check_nothing_ran(in_corpus)


def test_every_committed_spec_has_a_case() -> None:
    committed = {p.name for p in CORPUS.glob("*.yaml")}
    covered = {c.spec for c in CASES} | {"table_cp1252_group_nan.yaml"}
    assert committed <= covered, f"corpus files without a case: {sorted(committed - covered)}"


@pytest.mark.parametrize("args", [["run", "--bogus"], ["validate"], ["no-such-command"]])
def test_command_line_usage_errors_exit_4_without_traceback(args: list[str]) -> None:
    """Usage errors are exit 4 (usage), not click's 2 (which fairaudit reserves for 'interrupted')."""
    proc = subprocess.run([sys.executable, "-m", "fairaudit", *args], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 4, proc.stderr
    assert TRACEBACK not in proc.stdout + proc.stderr
    assert "Error" in proc.stderr


def test_truncated_image_is_an_error_even_after_weasyprint_is_imported(in_corpus: Path, tmp_path: Path) -> None:
    """weasyprint switches PIL to accept truncated files process-wide; the loader must not."""
    pytest.importorskip("weasyprint")
    from PIL import ImageFile

    assert ImageFile.LOAD_TRUNCATED_IMAGES  # what importing weasyprint did
    code, output = invoke(["run", "images_truncated.yaml", "-o", str(tmp_path), "-q"])
    assert code == 4 and "image file is truncated" in output, output
