#!/bin/sh
# The git work every task of a run needs, whatever the integration does around it, on the
# simulated layout (each task adds a file to each of three flat directories): its three blobs,
# its trees, its commit, the merge of it into the integration tip (merge-tree), the merge commit,
# the two refs, and a round of the run's upkeep per 200 merges (UPKEEP_EVERY). No workspace, no
# index, no scan. Each task starts from the tip as it was 8 merges earlier, as at M=8.
#
#   git-floor.sh DIR FILES_PER_DIRECTORY TASKS [UPKEEP_EVERY]
#
# Prints `times` (the shell's and its children's CPU) before and after the tasks.
set -eu
GIT_DIR=$1
export GIT_DIR
files=$2
tasks=$3
upkeep_every=${4:-200}

git init --quiet --bare
git config gc.auto 0
git config core.logAllRefUpdates false

# The base: FILES_PER_DIRECTORY files in each directory, written by one fast-import.
{
  printf 'commit refs/heads/main\ncommitter bench <bench@localhost> 0 +0000\ndata 5\nbase\n'
  i=0
  while [ "$i" -lt "$files" ]; do
    printf 'M 100644 inline src/b%s.ts\ndata <<END\nexport const b%s = %s;\nEND\n' "$i" "$i" "$i"
    printf 'M 100644 inline test/b%s.test.ts\ndata <<END\nexpect(b%s).toBe(%s);\nEND\n' "$i" "$i" "$i"
    printf 'M 100644 inline docs/tasks/b%s.md\ndata <<END\n## b%s\nEND\n' "$i" "$i"
    i=$((i + 1))
  done
} | git fast-import --quiet
git repack -adq

# A tree: directory $2 of commit $1, plus blob $3 named $4.
tree_with() {
  {
    git ls-tree "$1:$2"
    printf '100644 blob %s\t%s\n' "$3" "$4"
  } | git mktree
}

blob() { printf '%s\n' "$1" | git hash-object -w --stdin; }

# As the run's upkeep; its pack-objects prints the pack's name.
upkeep() {
  git maintenance run --quiet --task=loose-objects --task=pack-refs --task=commit-graph >/dev/null
}

set -- "$(git rev-parse main)"
echo before
times
j=0
while [ "$j" -lt "$tasks" ]; do
  base=$1
  eval "tip=\${$#}"
  src=$(tree_with "$base" src "$(blob "export const t$j = $j;")" "t$j.ts")
  test=$(tree_with "$base" test "$(blob "expect(t$j).toBe($j);")" "t$j.test.ts")
  tasks_dir=$(tree_with "$base" docs/tasks "$(blob "## t$j")" "t$j.md")
  docs=$(printf '040000 tree %s\ttasks\n' "$tasks_dir" | git mktree)
  root=$(printf '040000 tree %s\tdocs\n040000 tree %s\tsrc\n040000 tree %s\ttest\n' \
    "$docs" "$src" "$test" | git mktree)
  commit=$(git commit-tree "$root" -p "$base" -m "t$j")
  git update-ref "refs/heads/task/t$j" "$commit"
  merged=$(git merge-tree --write-tree --no-messages "$tip" "$commit")
  merge=$(git commit-tree "$merged" -p "$tip" -p "$commit" -m "merge t$j")
  git update-ref refs/heads/main "$merge" "$tip"
  set -- "$@" "$merge"
  [ "$#" -le 9 ] || shift
  j=$((j + 1))
  [ $((j % upkeep_every)) -ne 0 ] || upkeep
done
echo after
times
