// The tutorial's pipe_example.c with the roles of the languages swapped: a C
// parent makes the pipe and forks; the child moves the read end to
// descriptor 3 and execs the program given on the command line (node, reading
// descriptor 3 with pipeReader(3)); the parent writes "Hello, IPC", closes its
// end and waits for the child.
//
// usage: pipe_parent_exec PROGRAM [ARG...]; exits with the child's status.
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

int main(int argc, char **argv) {
  if (argc < 2) {
    fprintf(stderr, "usage: %s PROGRAM [ARG...]\n", argv[0]);
    return 2;
  }
  int fd[2];
  if (pipe(fd) != 0) {
    perror("pipe");
    return 2;
  }
  fflush(stdout);
  pid_t pid = fork();
  if (pid < 0) {
    perror("fork");
    return 2;
  }
  if (pid == 0) {  // child
    close(fd[1]);  // close the write end, or the reader never sees end of file
    if (fd[0] != 3) {
      if (dup2(fd[0], 3) < 0) {
        perror("dup2");
        _exit(2);
      }
      close(fd[0]);
    }
    execvp(argv[1], argv + 1);
    perror("execvp");
    _exit(127);
  }
  close(fd[0]);  // parent: close the read end
  if (write(fd[1], "Hello, IPC", 10) != 10) {
    perror("write");
    return 2;
  }
  close(fd[1]);
  int status;
  if (waitpid(pid, &status, 0) < 0) {
    perror("waitpid");
    return 2;
  }
  if (WIFEXITED(status)) return WEXITSTATUS(status);
  fprintf(stderr, "child killed by signal %d\n", WTERMSIG(status));
  return 2;
}
