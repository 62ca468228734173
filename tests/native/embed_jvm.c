/*
 * A native launcher that embeds the JVM, as jsvc, install4j/launch4j or any JNI host does:
 * it is not called `java` and never executes it.
 *
 *   embed_jvm LIBJVM CLASSPATH CLASS [ARGS...]
 *
 * Built two ways by tests/tests/embedded_jvm.rs: by default it dlopen()s LIBJVM and looks up
 * JNI_CreateJavaVM; with -DLINKED it is linked with -ljvm and calls it directly (LIBJVM is
 * then only printed). Either way it creates the JVM in a new thread (as the java launcher
 * does: the primordial thread's stack is not the JVM's to guard) and runs CLASS.main(ARGS).
 */
#include <dlfcn.h>
#include <jni.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef jint (*create_vm_fn)(JavaVM **, void **, void *);

struct launch {
    create_vm_fn create;
    const char *classpath;
    const char *class_name;
    int argc;
    char **argv;
    int status;
};

static void *run(void *arg) {
    struct launch *l = arg;
    char option[4096];
    snprintf(option, sizeof option, "-Djava.class.path=%s", l->classpath);
    JavaVMOption options[1] = {{.optionString = option}};
    JavaVMInitArgs init = {
        .version = JNI_VERSION_1_8, .nOptions = 1, .options = options, .ignoreUnrecognized = JNI_FALSE};
    JavaVM *vm;
    JNIEnv *env;
    if (l->create(&vm, (void **)&env, &init) != JNI_OK) {
        fprintf(stderr, "JNI_CreateJavaVM failed\n");
        l->status = 2;
        return NULL;
    }
    jclass cls = (*env)->FindClass(env, l->class_name);
    jmethodID main = cls ? (*env)->GetStaticMethodID(env, cls, "main", "([Ljava/lang/String;)V") : NULL;
    if (!main) {
        (*env)->ExceptionDescribe(env);
        l->status = 3;
        return NULL;
    }
    jobjectArray args = (*env)->NewObjectArray(env, l->argc, (*env)->FindClass(env, "java/lang/String"), NULL);
    for (int i = 0; i < l->argc; i++) {
        (*env)->SetObjectArrayElement(env, args, i, (*env)->NewStringUTF(env, l->argv[i]));
    }
    (*env)->CallStaticVoidMethod(env, cls, main, args);
    if ((*env)->ExceptionCheck(env)) {
        (*env)->ExceptionDescribe(env);
        l->status = 4;
    }
    (*vm)->DestroyJavaVM(vm);
    return NULL;
}

int main(int argc, char **argv) {
    if (argc < 4) {
        fprintf(stderr, "usage: %s LIBJVM CLASSPATH CLASS [ARGS...]\n", argv[0]);
        return 64;
    }
    struct launch l = {.classpath = argv[2], .class_name = argv[3], .argc = argc - 4, .argv = argv + 4};
#ifdef LINKED
    l.create = JNI_CreateJavaVM;
#else
    void *jvm = dlopen(argv[1], RTLD_NOW | RTLD_GLOBAL);
    if (!jvm) {
        fprintf(stderr, "dlopen %s: %s\n", argv[1], dlerror());
        return 1;
    }
    l.create = (create_vm_fn)dlsym(jvm, "JNI_CreateJavaVM");
    if (!l.create) {
        fprintf(stderr, "no JNI_CreateJavaVM in %s\n", argv[1]);
        return 1;
    }
#endif
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setstacksize(&attr, 8 << 20);
    pthread_t thread;
    if (pthread_create(&thread, &attr, run, &l) != 0) {
        return 1;
    }
    pthread_join(thread, NULL);
    return l.status;
}
