/* vqa_train.c: the trainer's command line (placeholder until the CLI lands). */
#include <stdio.h>

#include "vqa_version.h"

int main(int argc, char **argv) {
    printf("vqa_train %s (%s)\n", VQA_VERSION_STRING, VQA_GIT_HASH);
    return 0;
}
