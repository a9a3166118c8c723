#!/bin/sh
# `explain --resume` continues only a run with the same method, options and
# preprocessing: another method or option is refused with one line naming
# the file and the difference, and the outputs are left as they were; the
# same settings skip the finished image. `eval --resume` likewise refuses a
# DIR whose run.txt records other methods or options.
. "${NM_SOURCE_DIR:?}/tests/cli_check.sh"
nm_check_setup nm_resume_settings
ex() { "$NM_BIN" explain --model "$SRC/models/fashion_cnn.onnx" "$@" "$SRC/data/fashion/0_Ankle_boot.png"; }
J=$T/g/0_Ankle_boot.json
check "gradcam run" ex --method gradcam --quiet --out "$T/g"
before=$(cksum < "$J")
ex --method occlusion --resume --out "$T/g" 2> "$T/err"
check "occlusion --resume over gradcam outputs: exit 1 (got $?)" [ $? = 1 ]
check "... one line naming the file and both methods" sh -c "[ \$(wc -l < '$T/err') = 1 ] && grep -q 'g/0_Ankle_boot.json: made with other settings (\"method\": \"gradcam\", this run: \"method\": \"occlusion\")' '$T/err'"
check "... the gradcam record untouched" [ "$before" = "$(cksum < "$J")" ]
ex --method gradcam --resume --quiet --out "$T/g" 2> "$T/err"
check "gradcam --resume: the finished image is skipped" [ $? = 0 ]
check "... untouched" [ "$before" = "$(cksum < "$J")" ]
ex --method rise --rise-masks 64 --quiet --out "$T/r"
ex --method rise --rise-masks 128 --resume --out "$T/r" 2> "$T/err"
check "rise --rise-masks 128 --resume over 64: exit 1 (got $?)" [ $? = 1 ]
check "... naming rise_masks" grep -q '"rise_masks": 64, this run: "rise_masks": 128' "$T/err"
ex --steps 5 --quiet --out "$T/n"
ex --steps 6 --resume --out "$T/n" 2> "$T/err"
check "neuromask --steps 6 --resume over 5: exit 1 (got $?)" [ $? = 1 ]
check "... naming steps" grep -q '"steps": 5, this run: "steps": 6' "$T/err"
ex --steps 5 --preprocess fashion,scale=2 --resume --out "$T/n" 2> "$T/err"
check "another preprocessing --resume: exit 1 (got $?)" [ $? = 1 ]
check "... naming scale" grep -q '"scale": 1, this run: "scale": 2' "$T/err"
ex --steps 5 --resume --out "$T/n" 2> "$T/err"
check "the same options --resume: exit 0 (got $?)" [ $? = 0 ]
check "... skipped as complete" grep -q "1 image(s) already complete" "$T/err"
check "--force redoes it with the new options" ex --steps 6 --force --quiet --out "$T/n"
check "... recorded" grep -q '"steps": 6,' "$T/n/0_Ankle_boot.json"
ev() { "$NM_BIN" eval --model "$SRC/models/fashion_cnn.onnx" --auc-steps 8 "$@" "$SRC/data/fashion/0_Ankle_boot.png"; }
check "eval rise, 64 masks" ev --methods rise --rise-masks 64 --quiet --out "$T/v"
before=$(cksum < "$T/v/results.csv")
ev --methods rise --rise-masks 128 --resume --out "$T/v" 2> "$T/err"
check "eval --resume with 128 masks: exit 1 (got $?)" [ $? = 1 ]
check "... naming run.txt and the difference" grep -q 'v/run.txt: made by another run (argument: 64, this run: 128)' "$T/err"
ev --methods gradcam --resume --out "$T/v" 2> "$T/err"
check "eval --resume with another method: exit 1 (got $?)" grep -q '(method: rise, this run: gradcam)' "$T/err"
check "... results.csv untouched" [ "$before" = "$(cksum < "$T/v/results.csv")" ]
ev --methods rise --rise-masks 64 --resume --out "$T/v" 2> "$T/err"
check "eval --resume with the same settings: the row is kept" grep -q "rise: kept from" "$T/err"
nm_check_done
