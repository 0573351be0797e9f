// A WHEP viewer built on Pion WebRTC v3 with Pion's defaults (a 64-packet SRTP replay window, the kernel's
// default UDP receive buffer). It watches one room over loopback for a while and prints one JSON line: RTP
// packets received, sequence gaps, packets out of order, SRTP rejections (replayed or failing
// authentication) and whether an RTCP BYE arrived. It negotiates no NACK, so every packet lost on the way
// shows up as a gap instead of being repaired. With -twcc it also offers transport-wide congestion control
// (the header extension and rtcp-fb transport-cc) and sends Pion's transport feedback.
package main

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pion/ice/v2"
	"github.com/pion/interceptor"
	"github.com/pion/logging"
	"github.com/pion/rtcp"
	"github.com/pion/webrtc/v3"
)

// srtpCounter counts the SRTP session's decrypt failures, which Pion only logs.
type srtpCounter struct {
	replayed      int64
	authFailures  int64
	otherFailures int64
}

type countingLogger struct {
	counter *srtpCounter
	scope   string
}

func (l countingLogger) count(msg string) {
	if l.scope != "srtp" && l.scope != "srtcp" {
		return
	}
	switch {
	case strings.Contains(msg, "duplicated"):
		atomic.AddInt64(&l.counter.replayed, 1)
	case strings.Contains(msg, "auth tag"):
		atomic.AddInt64(&l.counter.authFailures, 1)
	default:
		atomic.AddInt64(&l.counter.otherFailures, 1)
	}
}
func (l countingLogger) Trace(string)                      {}
func (l countingLogger) Tracef(string, ...interface{})     {}
func (l countingLogger) Debug(string)                      {}
func (l countingLogger) Debugf(string, ...interface{})     {}
func (l countingLogger) Info(m string)                     { l.count(m) }
func (l countingLogger) Infof(f string, a ...interface{})  { l.count(fmt.Sprintf(f, a...)) }
func (l countingLogger) Warn(m string)                     { l.count(m) }
func (l countingLogger) Warnf(f string, a ...interface{})  { l.count(fmt.Sprintf(f, a...)) }
func (l countingLogger) Error(m string)                    { l.count(m) }
func (l countingLogger) Errorf(f string, a ...interface{}) { l.count(fmt.Sprintf(f, a...)) }

type loggerFactory struct{ counter *srtpCounter }

func (f loggerFactory) NewLogger(scope string) logging.LeveledLogger {
	return countingLogger{counter: f.counter, scope: scope}
}

// streamStats follows one track's sequence numbers (extended to 32 bits).
type streamStats struct {
	Packets    int  `json:"packets"`
	Bytes      int  `json:"bytes"`
	Missing    int  `json:"missing"`
	OutOfOrder int  `json:"outOfOrder"`
	Duplicates int  `json:"duplicates"`
	FirstMs    int  `json:"firstPacketMs"`
	FirstIsKey bool `json:"firstIsKeyframe"`
	started    bool
	lowest     int64
	highest    int64
	seen       map[int64]bool
}

func (s *streamStats) add(seq uint16, payload []byte, sinceStart time.Duration, video bool) {
	if !s.started {
		s.started = true
		s.seen = map[int64]bool{}
		s.lowest = int64(seq)
		s.highest = int64(seq)
		s.FirstMs = int(sinceStart.Milliseconds())
		s.FirstIsKey = video && startsKeyframe(payload)
	}
	// Unwrap relative to the highest number so far.
	ext := s.highest + int64(int16(seq-uint16(s.highest)))
	s.Packets++
	s.Bytes += len(payload)
	if s.seen[ext] {
		s.Duplicates++
		return
	}
	s.seen[ext] = true
	if ext < s.highest {
		s.OutOfOrder++
	}
	if ext > s.highest {
		s.highest = ext
	}
	if ext < s.lowest {
		s.lowest = ext
	}
}

func (s *streamStats) finish() {
	if s.started {
		s.Missing = int(s.highest-s.lowest+1) - len(s.seen)
	}
}

// startsKeyframe: an SPS or IDR NAL unit, alone, first in a STAP-A, or the first FU-A fragment of an IDR.
func startsKeyframe(p []byte) bool {
	if len(p) < 2 {
		return false
	}
	switch t := p[0] & 0x1f; t {
	case 5, 7:
		return true
	case 24:
		return len(p) > 3 && (p[3]&0x1f == 7 || p[3]&0x1f == 5)
	case 28:
		return p[1]&0x80 != 0 && p[1]&0x1f == 5
	}
	return false
}

type result struct {
	Connected    bool         `json:"connected"`
	Video        *streamStats `json:"video"`
	Audio        *streamStats `json:"audio"`
	SrtpReplayed int64        `json:"srtpReplayed"`
	SrtpAuthFail int64        `json:"srtpAuthFailures"`
	SrtpOther    int64        `json:"srtpOtherFailures"`
	Bye          bool         `json:"bye"`
	ByeMs        int          `json:"byeMs"`
	ClosedMs     int          `json:"closedMs"`
	Error        string       `json:"error,omitempty"`
}

func main() {
	whepURL := flag.String("url", "", "WHEP endpoint, e.g. http://127.0.0.1:8080/whep?target_id=room")
	duration := flag.Duration("duration", 10*time.Second, "how long to count packets after the offer is posted")
	untilBye := flag.Bool("until-bye", false, "stop early once an RTCP BYE arrived or the connection closed")
	window := flag.Uint("replay-window", 64, "SRTP replay window (Pion's default is 64)")
	transportCc := flag.Bool("twcc", false, "offer transport-wide congestion control and send its feedback")
	flag.Parse()
	res := run(*whepURL, *duration, *untilBye, *window, *transportCc)
	out, _ := json.Marshal(res)
	fmt.Println(string(out))
}

func run(whepURL string, duration time.Duration, untilBye bool, window uint, transportCc bool) *result {
	res := &result{Video: &streamStats{}, Audio: &streamStats{}, ByeMs: -1, ClosedMs: -1}
	counter := &srtpCounter{}
	settings := webrtc.SettingEngine{LoggerFactory: loggerFactory{counter}}
	// Loopback only: no mDNS, no other interfaces (the tests never send to the LAN).
	settings.SetIncludeLoopbackCandidate(true)
	settings.SetInterfaceFilter(func(name string) bool { return name == "lo" })
	settings.SetNetworkTypes([]webrtc.NetworkType{webrtc.NetworkTypeUDP4})
	settings.SetICEMulticastDNSMode(ice.MulticastDNSModeDisabled)
	settings.SetSRTPReplayProtectionWindow(window)

	media := &webrtc.MediaEngine{}
	if err := media.RegisterCodec(webrtc.RTPCodecParameters{
		RTPCodecCapability: webrtc.RTPCodecCapability{
			MimeType: webrtc.MimeTypeH264, ClockRate: 90000,
			SDPFmtpLine: "level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42e01f",
		},
		PayloadType: 102,
	}, webrtc.RTPCodecTypeVideo); err != nil {
		res.Error = err.Error()
		return res
	}
	if err := media.RegisterCodec(webrtc.RTPCodecParameters{
		RTPCodecCapability: webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeOpus, ClockRate: 48000, Channels: 2},
		PayloadType:        111,
	}, webrtc.RTPCodecTypeAudio); err != nil {
		res.Error = err.Error()
		return res
	}
	registry := &interceptor.Registry{}
	if transportCc {
		if err := webrtc.ConfigureTWCCSender(media, registry); err != nil {
			res.Error = err.Error()
			return res
		}
	}
	api := webrtc.NewAPI(
		webrtc.WithMediaEngine(media),
		webrtc.WithSettingEngine(settings),
		webrtc.WithInterceptorRegistry(registry),
	)
	pc, err := api.NewPeerConnection(webrtc.Configuration{})
	if err != nil {
		res.Error = err.Error()
		return res
	}
	defer pc.Close()
	for _, kind := range []webrtc.RTPCodecType{webrtc.RTPCodecTypeVideo, webrtc.RTPCodecTypeAudio} {
		if _, err := pc.AddTransceiverFromKind(kind, webrtc.RTPTransceiverInit{
			Direction: webrtc.RTPTransceiverDirectionRecvonly,
		}); err != nil {
			res.Error = err.Error()
			return res
		}
	}

	start := time.Now()
	var mu sync.Mutex
	done := make(chan struct{})
	var doneOnce sync.Once
	finish := func() { doneOnce.Do(func() { close(done) }) }

	pc.OnConnectionStateChange(func(state webrtc.PeerConnectionState) {
		mu.Lock()
		defer mu.Unlock()
		switch state {
		case webrtc.PeerConnectionStateConnected:
			res.Connected = true
		case webrtc.PeerConnectionStateClosed, webrtc.PeerConnectionStateFailed, webrtc.PeerConnectionStateDisconnected:
			if res.ClosedMs < 0 {
				res.ClosedMs = int(time.Since(start).Milliseconds())
			}
			if untilBye {
				finish()
			}
		}
	})
	pc.OnTrack(func(track *webrtc.TrackRemote, receiver *webrtc.RTPReceiver) {
		video := track.Kind() == webrtc.RTPCodecTypeVideo
		stats := res.Audio
		if video {
			stats = res.Video
		}
		go func() {
			for {
				packets, _, err := receiver.ReadRTCP()
				if err != nil {
					return
				}
				for _, p := range packets {
					if _, ok := p.(*rtcp.Goodbye); ok {
						mu.Lock()
						if !res.Bye {
							res.Bye = true
							res.ByeMs = int(time.Since(start).Milliseconds())
						}
						mu.Unlock()
						if untilBye {
							finish()
						}
					}
				}
			}
		}()
		for {
			packet, _, err := track.ReadRTP()
			if err != nil {
				return
			}
			since := time.Since(start)
			if since > duration {
				continue
			}
			mu.Lock()
			stats.add(packet.SequenceNumber, packet.Payload, since, video)
			mu.Unlock()
		}
	})

	offer, err := pc.CreateOffer(nil)
	if err != nil {
		res.Error = err.Error()
		return res
	}
	gathered := webrtc.GatheringCompletePromise(pc)
	if err := pc.SetLocalDescription(offer); err != nil {
		res.Error = err.Error()
		return res
	}
	<-gathered
	answer, err := post(whepURL, pc.LocalDescription().SDP)
	if err != nil {
		res.Error = err.Error()
		return res
	}
	if err := pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeAnswer, SDP: answer}); err != nil {
		res.Error = err.Error()
		return res
	}
	select {
	case <-done:
	case <-time.After(duration):
	}
	mu.Lock()
	defer mu.Unlock()
	res.Video.finish()
	res.Audio.finish()
	res.SrtpReplayed = atomic.LoadInt64(&counter.replayed)
	res.SrtpAuthFail = atomic.LoadInt64(&counter.authFailures)
	res.SrtpOther = atomic.LoadInt64(&counter.otherFailures)
	return res
}

func post(endpoint, offer string) (string, error) {
	if _, err := url.Parse(endpoint); err != nil {
		return "", err
	}
	resp, err := http.Post(endpoint, "application/sdp", bytes.NewBufferString(offer))
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return "", err
	}
	if resp.StatusCode != http.StatusCreated {
		return "", fmt.Errorf("WHEP POST answered %d: %s", resp.StatusCode, strings.TrimSpace(string(body)))
	}
	return string(body), nil
}
