"""trails"""
