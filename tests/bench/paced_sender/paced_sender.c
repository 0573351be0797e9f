/*
 * Paced UDP sender for tests/bench/receive_loop_bench.ts: sends 1200-byte datagrams to 127.0.0.1:PORT at
 * RATE per second for SECONDS, each at its own due time (absolute clock_nanosleep), BURST back to back per
 * due time. Loopback only. Prints the number sent.
 * Usage: paced_sender PORT RATE SECONDS [BURST]
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

int main(int argc, char **argv) {
  if (argc < 4) {
    fprintf(stderr, "usage: paced_sender PORT RATE SECONDS [BURST]\n");
    return 2;
  }
  int port = atoi(argv[1]);
  double rate = atof(argv[2]);
  double seconds = atof(argv[3]);
  int burst = argc > 4 ? atoi(argv[4]) : 1;
  if (port <= 0 || port > 65535 || rate <= 0 || seconds <= 0 || burst < 1) return 2;
  int fd = socket(AF_INET, SOCK_DGRAM, 0);
  struct sockaddr_in to;
  memset(&to, 0, sizeof to);
  to.sin_family = AF_INET;
  to.sin_port = htons(port);
  to.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  char payload[1200];
  memset(payload, 0, sizeof payload);
  payload[0] = (char)0x80;
  struct timespec start, due;
  clock_gettime(CLOCK_MONOTONIC, &start);
  long long total = (long long)(rate * seconds);
  double interval_ns = 1e9 * burst / rate;
  long long sent = 0;
  for (long long i = 0; sent < total; i++) {
    long long offset = (long long)(i * interval_ns);
    due.tv_sec = start.tv_sec + (start.tv_nsec + offset) / 1000000000LL;
    due.tv_nsec = (start.tv_nsec + offset) % 1000000000LL;
    clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &due, NULL);
    for (int b = 0; b < burst && sent < total; b++, sent++) {
      sendto(fd, payload, sizeof payload, 0, (struct sockaddr *)&to, sizeof to);
    }
  }
  printf("SENT %lld\n", sent);
  return 0;
}
